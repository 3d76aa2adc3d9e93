"""What a run leaves for people: the postmortem, its evidence, tickets, and rollbot's own metrics."""
