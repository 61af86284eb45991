"""The test suite: tests/unit runs in process, tests/e2e needs real processes (see tests/README.md)."""
