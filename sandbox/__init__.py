"""Local stand-ins for external providers (development and tests)."""
