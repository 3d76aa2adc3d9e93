"""Persistence: the journal of runs, steps and events. The only package that speaks SQL."""

from storage.database import connect
from storage.schemas import SchemaSighting, SchemaSightings
from storage.repository import EventView, Journal, LostRun, NotStartable, RunStatus, RunView, StepStatus, StepView
from storage.runstate import EventKind, IllegalMove, Lease, RunKind

__all__ = ["connect", "Journal", "RunStatus", "StepStatus", "RunView", "StepView", "EventView", "NotStartable", "LostRun",
           "IllegalMove", "Lease", "RunKind", "EventKind", "SchemaSighting", "SchemaSightings"]
