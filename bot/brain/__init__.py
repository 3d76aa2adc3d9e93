"""The Engine's brain (SQLite): facts about it, its snapshots, who holds it, and swapping it safely."""
