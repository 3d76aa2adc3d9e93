"""The core's use cases behind one front door, shared by both front ends."""
