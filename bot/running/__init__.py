"""Running an approved plan: the steps, their journal, and what a run leaves behind."""
