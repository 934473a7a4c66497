"""Executing an approved request, exactly once.

execute_approved() runs inside the transaction that moved the request to approved (the one
compare-and-set winner), so an approval and its execution commit together. The change itself
runs in a savepoint: when it fails (the target changed, a rule now refuses it), the savepoint is
rolled back and the request is recorded as failed with the reason, never left half-applied.
"""

from __future__ import annotations

import logging

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from governance.audit import Actor, audit_append
from governance.models.approvals import ApprovalRequest, ApprovalStatus
from governance.services.approvals_registry import fingerprint, get_action

logger = logging.getLogger(__name__)


def load_target(request: ApprovalRequest, *, lock: bool = False):
    """The request's target as it is now (locked for the execution), or None when it has none."""
    if request.target_content_type_id is None:
        return None
    model = ContentType.objects.get_for_id(request.target_content_type_id).model_class()
    queryset = model.objects.select_for_update() if lock else model.objects.all()
    return queryset.get(pk=request.target_object_id)


def _failure_message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"{field}: {' '.join(msgs)}" if field != "__all__" else " ".join(msgs)
                             for field, msgs in exc.message_dict.items())
        return " ".join(exc.messages)
    if isinstance(exc, ObjectDoesNotExist):
        return "The object this request targets no longer exists."
    return str(exc) or exc.__class__.__name__


def _apply(request: ApprovalRequest, actor: Actor):
    spec = get_action(request.action)
    target = load_target(request, lock=True)
    if spec.fingerprint_fields and fingerprint(target, spec.fingerprint_fields) != request.target_fingerprint:
        raise ValidationError(
            f"{target} changed since this request was filed (its {', '.join(spec.fingerprint_fields)}): "
            "the approved change no longer applies. File a new request against the current state.")
    payload = spec.validate(requester=request.requested_by, target=target, payload=request.payload)
    return spec.execute(request=request, target=target, payload=payload, actor=actor)


def execute_approved(request: ApprovalRequest, *, notify: bool = True) -> ApprovalRequest:
    """Apply an approved request's change; record executed or failed. Call inside the approving transaction."""
    # cycle: governance.services.approvals imports approvals_execution
    from governance.services import approvals_notify
    from governance.services.approvals import transition

    actor = Actor.system(task_id=f"approval-{request.pk}", label="steward approvals")
    failure = ""
    result = None
    try:
        with transaction.atomic():
            result = _apply(request, actor)
    except (ValidationError, PermissionDenied, ObjectDoesNotExist) as exc:
        failure = _failure_message(exc)
    except Exception as exc:  # a bug or a database error must not leave the request approved forever
        logger.exception("approval request %s failed to execute", request.pk)
        failure = f"The change could not be applied ({exc.__class__.__name__}); see the server log."
    now = timezone.now()
    fields = {"executed_at": now}
    if failure:
        fields["failure_reason"] = failure[:2000]
        new_status = ApprovalStatus.FAILED
    else:
        new_status = ApprovalStatus.EXECUTED
        if result is not None:
            fields["result_content_type"] = ContentType.objects.get_for_model(result)
            fields["result_object_id"] = str(result.pk)
    if not transition(request, ApprovalStatus.APPROVED, new_status, **fields):
        return request  # another execution claimed it (cannot happen under the row lock; stay safe)
    changes = {"approval_request": {"before": None, "after": request.pk},
               "status": {"before": ApprovalStatus.APPROVED, "after": new_status}}
    if failure:
        changes["failure_reason"] = {"before": None, "after": failure[:500]}
    if result is not None:
        changes["result"] = {"before": None, "after": f"{result._meta.label_lower}:{result.pk}"}
    target = load_target(request) if request.target_content_type_id else result
    audit_append(
        actor=actor, action="approval.fail" if failure else "approval.execute",
        target=target if target is not None else request,
        summary=(f"Approval request #{request.pk} ({request.get_action_display()}) failed: {failure}" if failure
                 else f"Approval request #{request.pk} ({request.get_action_display()}) executed"),
        changes=changes)
    if notify:
        approvals_notify.notify_requester(request, event="failed" if failure else "executed")
    return request
