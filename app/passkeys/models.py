"""The WebAuthn credential and ceremony-challenge tables."""
