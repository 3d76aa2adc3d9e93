"""Action ids of rollbot's buttons: part of the operator interface, never renamed."""

from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "rollback_approve"
    BRAIN_RESTORE_APPROVE = "brain_restore_approve"
    CANCEL = "rollback_cancel"


class RecoveryActionId(StrEnum):
    """The buttons on an "interrupted run" report: approvers only."""

    RESUME = "rollback_resume"
    ABORT = "rollback_abort"


class BlockId(StrEnum):
    PLAN_ACTIONS = "rollback_plan_actions"
    RECOVERY_ACTIONS = "rollback_recovery_actions"
