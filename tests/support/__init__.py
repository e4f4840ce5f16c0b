"""Helpers shared by test modules (import as `support.<module>`; tests/ is on sys.path)."""
