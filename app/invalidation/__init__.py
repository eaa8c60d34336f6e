"""Durable cache invalidation: a transactional outbox for the tombstones and deletes a revocation depends on."""
