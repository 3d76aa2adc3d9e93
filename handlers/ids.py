"""Action ids of rollbot's buttons: part of the operator interface, never renamed."""

from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "rollback_approve"
    BRAIN_RESTORE_APPROVE = "brain_restore_approve"
    CANCEL = "rollback_cancel"


class AnswerActionId(StrEnum):
    """The buttons on a plan that asks whether to restore the brain: the answer re-plans in place."""

    RESTORE = "brain_answer_restore"
    KEEP = "brain_answer_keep"


class RecoveryActionId(StrEnum):
    """The buttons on an "interrupted run" report: approvers only."""

    RESUME = "rollback_resume"
    ABORT = "rollback_abort"


class CheckActionId(StrEnum):
    """The button on a `/rollback check` verdict that recommends a rollback: it plans one."""

    PLAN = "rollback_plan_from_check"


class BlockId(StrEnum):
    PLAN_ACTIONS = "rollback_plan_actions"
    CHECK_ACTIONS = "rollback_check_actions"
    RECOVERY_ACTIONS = "rollback_recovery_actions"
