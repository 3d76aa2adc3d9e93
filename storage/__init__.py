"""Persistence: the journal of runs, steps and events. The only package that speaks SQL."""

from storage.database import connect
from storage.health_probes import HealthRecord
from storage.repository import EventView, Journal, LostRun, NotStartable, RunStatus, RunView, StepStatus, StepView
from storage.runstate import EventKind, IllegalMove, Lease, RunKind
from storage.schemas import SchemaSighting, SchemaSightings

__all__ = [
    "EventKind",
    "EventView",
    "HealthRecord",
    "IllegalMove",
    "Journal",
    "Lease",
    "LostRun",
    "NotStartable",
    "RunKind",
    "RunStatus",
    "RunView",
    "SchemaSighting",
    "SchemaSightings",
    "StepStatus",
    "StepView",
    "connect",
]
