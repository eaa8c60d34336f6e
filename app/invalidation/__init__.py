"""Durable cache invalidation: a transactional outbox for the tombstones and stale markers a revocation depends on."""
