"""Bodies and results of the incident-response operations: kill switch, drill, rotate, revoke, sweep now."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from governance.api.serializers.common import ModelSerializer
from governance.models.checks import SweepRun
from governance.models.lifecycle import (
    KILL_SWITCH_OPEN,
    CredentialRevocation,
    KillSwitchActivation,
    KillSwitchStep,
    RotationJob,
    SharedChoice,
    StepStatus,
)

REASON_MAX = 2000


SHARED_CHOICE_HELP = ("Needed when a credential of the workflow is shared with other live workflows: "
                      "suspend_anyway (they stop too) or rotate_isolate (a new secret for them; this workflow "
                      "loses the credential).")


class KillSwitchPreviewRequestSerializer(serializers.Serializer):
    shared_choice = serializers.ChoiceField(choices=SharedChoice.choices, required=False, allow_blank=True,
                                            help_text="Only the plan for this choice. " + SHARED_CHOICE_HELP)


class KillSwitchActivateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX, help_text="Why the workflow is stopped (the incident).")
    shared_choice = serializers.ChoiceField(choices=SharedChoice.choices, required=False, allow_blank=True,
                                            help_text=SHARED_CHOICE_HELP)


class StepDoneSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=REASON_MAX, help_text="What was done (where, by whom, the ticket).")


class StepWaiveSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX, help_text="Why the step is not done.")


class RotateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX, required=False, allow_blank=True,
                                   help_text="Needed for a privileged credential: the justification of the "
                                             "privileged-rotation request filed for you.")


class RevokeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX, help_text="Why the credential is revoked for good.")


class SweepNowSerializer(serializers.Serializer):
    checks = serializers.ListField(child=serializers.CharField(max_length=60), required=False, max_length=200,
                                   help_text="Check codes to evaluate; all checks when left out.")


# Results ------------------------------------------------------------------------------------------

class KillSwitchStepSerializer(ModelSerializer):
    class Meta:
        model = KillSwitchStep
        fields = ("id", "position", "action", "label", "credential", "status", "detail", "proof", "assignee",
                  "closed_by", "comment", "started_at", "finished_at")
        read_only_fields = fields


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    manual_open = serializers.IntegerField(help_text="Steps to do by hand still open (mark-done or waive them).")
    finished = serializers.BooleanField()


class SharedWithSerializer(serializers.Serializer):
    credential_id = serializers.IntegerField()
    credential = serializers.CharField()
    workflows = serializers.ListField(child=serializers.DictField())


class KillSwitchActivationSerializer(ModelSerializer):
    steps = KillSwitchStepSerializer(many=True, read_only=True)
    shared_with = SharedWithSerializer(many=True, read_only=True,
                                       help_text="The other workflows that used its shared credentials.")
    progress = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = KillSwitchActivation
        fields = ("id", "workflow", "mode", "status", "reason", "shared_choice", "shared_with", "activated_by",
                  "actor_label", "workflow_status_before", "approval_request_id", "started_at", "finished_at",
                  "progress", "steps", "status_url")
        read_only_fields = fields

    def get_progress(self, activation) -> ProgressSerializer:
        steps = list(activation.steps.all())
        open_ = (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.AWAITING)
        return {"done": sum(1 for s in steps if s.status not in open_), "total": len(steps),
                "manual_open": sum(1 for s in steps if s.status == StepStatus.AWAITING),
                "finished": activation.status not in KILL_SWITCH_OPEN}

    def get_status_url(self, activation) -> str:
        """Poll this until status is no longer running."""
        return reverse("v1:killswitchactivation-detail", args=[activation.pk])


class ApprovalRequestLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField()


class RotationJobSerializer(ModelSerializer):
    status_url = serializers.SerializerMethodField()
    approval_request = serializers.SerializerMethodField()

    class Meta:
        model = RotationJob
        fields = ("id", "credential", "due_on", "trigger", "status", "requested_by", "attempt_count", "claimed_at",
                  "finished_at", "new_version", "last_error", "approval_request", "created_at", "status_url")
        read_only_fields = fields

    def get_status_url(self, job) -> str:
        """Poll this until status is succeeded, failed or cancelled."""
        return reverse("v1:rotationjob-detail", args=[job.pk])

    def get_approval_request(self, job) -> ApprovalRequestLinkSerializer(allow_null=True):
        """The privileged-rotation request this job waits for (rotate-now files it) or was released by."""
        request = self.context.get("approval_request")
        if request is not None:
            return {"id": request.pk, "status": request.status,
                    "url": reverse("v1:approvalrequest-detail", args=[request.pk])}
        if job.approval_request_id:
            return {"id": job.approval_request_id, "status": "approved",
                    "url": reverse("v1:approvalrequest-detail", args=[job.approval_request_id])}
        return None


class RevocationSerializer(ModelSerializer):
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = CredentialRevocation
        fields = ("id", "credential", "reason", "status", "requested_by", "performed_at", "proof", "error",
                  "created_at", "status_url")
        read_only_fields = fields

    def get_status_url(self, revocation) -> str:
        """Poll this until status is succeeded (with proof) or failed."""
        return reverse("v1:revocation-detail", args=[revocation.pk])


class SweepProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Checks evaluated (or failed) so far.")
    total = serializers.IntegerField()
    started = serializers.BooleanField(help_text="A worker has taken the run.")
    finished = serializers.BooleanField()


class SweepRunSerializer(ModelSerializer):
    progress = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = SweepRun
        fields = ("id", "status", "trigger", "started_at", "finished_at", "checks", "counts", "errors", "progress",
                  "status_url")
        read_only_fields = fields

    def get_progress(self, run) -> SweepProgressSerializer:
        done = len(run.counts) + len(run.errors)
        return {"done": done, "total": len(run.checks), "started": bool(run.lease_token) or done > 0
                or run.status != "running", "finished": run.status != "running"}

    def get_status_url(self, run) -> str:
        """Poll this until status is no longer running."""
        return reverse("v1:sweeprun-detail", args=[run.pk])


# The kill switch's preview --------------------------------------------------------------------------

class PreviewWorkflowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()


class PreviewCredentialSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()


class PreviewRowSerializer(serializers.Serializer):
    credential = PreviewCredentialSerializer()
    connector = serializers.CharField(allow_blank=True, help_text="The connector that acts on it; empty: none.")
    revokes_at_issuer = serializers.BooleanField(help_text="The connector revokes where the credential is accepted.")
    how = serializers.CharField(help_text="How the kill switch stops it.")
    problem = serializers.CharField(allow_blank=True, help_text="Why no connector acts on it (empty when one does).")
    needs_manual_step = serializers.BooleanField(help_text="A step done by hand is laid out for it.")
    shared_with = PreviewWorkflowSerializer(many=True, help_text="Other live workflows using this credential "
                                                                 "(those you may see).")
    shared_hidden = serializers.IntegerField(help_text="Other live workflows using it that you may not see.")


class PlannedStepSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    action = serializers.CharField()
    label = serializers.CharField()
    manual = serializers.BooleanField(help_text="Done by hand: mark it done (or a security admin waives it).")
    detail = serializers.CharField(allow_blank=True)
    credential = serializers.IntegerField(allow_null=True)


class PlanSerializer(serializers.Serializer):
    shared_choice = serializers.CharField(allow_blank=True, help_text="The choice this plan is for (empty: none "
                                                                      "is needed).")
    label = serializers.CharField()
    steps = PlannedStepSerializer(many=True)


class ChoiceSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()


class KillSwitchPreviewSerializer(serializers.Serializer):
    workflow = PreviewWorkflowSerializer()
    may_activate = serializers.BooleanField()
    blocker = serializers.CharField(allow_blank=True, help_text="Why it cannot be activated now (empty when it can).")
    open_activation = serializers.IntegerField(allow_null=True, help_text="A kill switch of it still open.")
    needs_choice = serializers.BooleanField(help_text="A credential is shared: activation needs shared_choice.")
    choices = ChoiceSerializer(many=True)
    credentials = PreviewRowSerializer(many=True)
    plans = PlanSerializer(many=True, help_text="The steps it would lay out, per possible shared_choice.")
