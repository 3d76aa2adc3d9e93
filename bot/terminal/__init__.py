"""The terminal front end: the `rollbot` commands and their rendering with rich."""
