"""Slack test infrastructure: a stateful fake Web API, a Prism contract-check harness in front of
it, and builders for the signed requests Slack sends to an app (slash commands, block actions).
"""
