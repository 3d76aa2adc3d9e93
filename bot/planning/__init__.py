"""Planning a rollback: the plan, its preflight checks, the brain question and who may approve it."""
