"""Unit tests: the core against small fakes of Docker, Compose and /health, real SQLite files."""
