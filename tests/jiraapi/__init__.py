"""Jira test infrastructure: jira820 (a stateful imitation of Jira Data Center 8.20's REST v2)
as a subprocess that can be stopped and started again on the same port with its data, and a
Prism contract-check harness serving Atlassian's v2 spec in front of it.
"""
