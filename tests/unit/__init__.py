"""Unit tests: services, TOTP codes, encryption, models, rows, formatters, configuration; no HTTP client."""
