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


class KnownBadActionId(StrEnum):
    """The button on a rollback's all-clear: clear the version it left (known-bad) for deployment,
    with a reason typed in a small modal."""

    CLEAR = "known_bad_clear"


class BlockId(StrEnum):
    PLAN_ACTIONS = "rollback_plan_actions"
    KNOWN_BAD_ACTIONS = "known_bad_actions"
    CHECK_ACTIONS = "rollback_check_actions"
    RECOVERY_ACTIONS = "rollback_recovery_actions"


class ViewId(StrEnum):
    """Callback ids of rollbot's modals."""

    ROLLBACK_FORM = "rollback_form"
    KNOWN_BAD_CLEAR = "known_bad_clear_form"


class ClearFormBlock(StrEnum):
    """The one field of the clear modal: why the version may run again (block and element share the id)."""

    REASON = "clear_reason"


class FormBlock(StrEnum):
    """The fields of the `/rollback` form: each block and its element share the id."""

    TARGET = "form_target"
    VERSION = "form_version"
    OTHER_VERSION = "form_other_version"
    REASON = "form_reason"
    BRAIN = "form_brain"


class ExpiredPlanActionId(StrEnum):
    """The button on a plan that expired unconfirmed: the same request, planned again."""

    PLAN_AGAIN = "rollback_plan_again"
