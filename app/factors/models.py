"""The authenticator-app and recovery-code tables."""
