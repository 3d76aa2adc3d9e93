"""rollbot: the Engine's rollback runbook as one command.

The core in this package knows nothing of Slack. Front ends (the terminal in `bot.terminal`, Slack in
`handlers`, both started by `bot.program`) build a request, ask the core for a plan, and hand an
approved plan to the runner.
"""

__version__ = "0.1.0"
