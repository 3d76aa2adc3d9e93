"""The outside systems the core drives, each behind one small module: Compose, Docker, /health, logs."""
