"""Incident-response operations over the API: explicit POSTs a SOAR or ticketing tool calls.

    GET  /workflows/{id}/kill-switch/preview/   what activating it would do     lifecycle:killswitch
         (POST with {"shared_choice"} too)
    POST /workflows/{id}/kill-switch/activate/  stop the workflow now            lifecycle:killswitch
    POST /kill-switch-steps/{id}/mark-done/     a step done by hand: done        lifecycle:killswitch
    POST /kill-switch-steps/{id}/waive/         ... or waived (security admins)  lifecycle:killswitch
    POST /workflows/{id}/drill/                 a drill of its shutdown steps    lifecycle:drill
    POST /credentials/{id}/rotate/              rotate now                       lifecycle:rotate
    POST /credentials/{id}/revoke/              revoke for good, with proof      lifecycle:revoke
    POST /sweep-runs/                           sweep now (security admins)      sweep:run

Each answers 202 with the job it queued (activation, rotation job, revocation, sweep run) and its
status_url to poll (also in Location). Objects the caller may not see answer 404; the services gate
the rest (403) and validate the input (400, with field messages). Idempotency-Key is honoured.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from governance import permissions
from governance.api.base import StewardViewSet
from governance.api.errors import Conflict
from governance.api.idempotency import idempotent
from governance.api.serializers.operations import (
    KillSwitchActivateSerializer,
    KillSwitchActivationSerializer,
    KillSwitchPreviewRequestSerializer,
    KillSwitchPreviewSerializer,
    KillSwitchStepSerializer,
    RevocationSerializer,
    RevokeSerializer,
    RotateSerializer,
    RotationJobSerializer,
    StepDoneSerializer,
    StepWaiveSerializer,
    SweepNowSerializer,
    SweepRunSerializer,
)
from governance.models import Credential, Workflow
from governance.models.checks import SweepRun
from governance.models.integrations import IntegrationScope
from governance.models.lifecycle import CredentialRevocation, KillSwitchStep, SharedChoice
from governance.selectors import lifecycle as lifecycle_selectors
from governance.services import operations, sweep_now

KILLSWITCH, DRILL, ROTATE, REVOKE, SWEEP = (
    IntegrationScope.LIFECYCLE_KILLSWITCH, IntegrationScope.LIFECYCLE_DRILL, IntegrationScope.LIFECYCLE_ROTATE,
    IntegrationScope.LIFECYCLE_REVOKE, IntegrationScope.SWEEP_RUN)


def accepted(data: dict) -> Response:
    """202: the work is queued; poll status_url."""
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["status_url"]})


class _Objects(StewardViewSet):
    """The objects an operation acts on, as the caller may see them (missing and forbidden: 404)."""

    model = None

    def get_queryset(self):
        return permissions.restrict(self.model.objects.all(), self.request.user, permissions.VIEW)


def _activation_data(view, activation) -> dict:
    activation = lifecycle_selectors.kill_switch_list(user=view.request.user).prefetch_related("steps").get(
        pk=activation.pk)
    return KillSwitchActivationSerializer(activation, context=view.get_serializer_context()).data


def _activation_response(view, activation) -> Response:
    return accepted(_activation_data(view, activation))


@extend_schema(tags=["operations"])
class WorkflowOperationsViewSet(_Objects):
    model = Workflow
    serializer_class = KillSwitchActivationSerializer
    scopes = {"kill_switch_preview": KILLSWITCH, "kill_switch_activate": KILLSWITCH, "drill": DRILL}

    @extend_schema(request=KillSwitchPreviewRequestSerializer, responses={200: KillSwitchPreviewSerializer},
                   parameters=[OpenApiParameter("shared_choice", str, OpenApiParameter.QUERY, required=False,
                                                enum=SharedChoice.values, description="GET: only this plan.")],
                   summary="Preview the kill switch: per credential how it is stopped and which workflows share it, "
                           "and the steps per shared_choice (changes nothing)")
    @action(detail=True, methods=["get", "post"], url_path="kill-switch/preview", url_name="kill-switch-preview")
    def kill_switch_preview(self, request, pk=None):
        workflow = self.get_object()
        body = KillSwitchPreviewRequestSerializer(data=request.data if request.method == "POST"
                                                  else request.query_params)
        body.is_valid(raise_exception=True)
        preview = operations.workflow_kill_switch_preview(actor=self.actor, workflow=workflow,
                                                          shared_choice=body.validated_data.get("shared_choice", ""))
        return Response(KillSwitchPreviewSerializer(preview).data)

    @extend_schema(request=KillSwitchActivateSerializer, responses={202: KillSwitchActivationSerializer},
                   summary="Activate the kill switch: suspend the workflow now and its credentials through connectors")
    @action(detail=True, methods=["post"], url_path="kill-switch/activate", url_name="kill-switch-activate")
    @idempotent
    def kill_switch_activate(self, request, pk=None):
        workflow = self.get_object()
        body = KillSwitchActivateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        activation = operations.workflow_kill_switch_activate(
            actor=self.actor, workflow=workflow, reason=body.validated_data["reason"],
            shared_choice=body.validated_data.get("shared_choice", ""))
        return _activation_response(self, activation)

    @extend_schema(request=None, responses={202: KillSwitchActivationSerializer},
                   summary="Start a drill of the shutdown procedure (each connector proves it could act; nothing "
                           "changes)")
    @action(detail=True, methods=["post"])
    @idempotent
    def drill(self, request, pk=None):
        activation = operations.workflow_drill_start(actor=self.actor, workflow=self.get_object())
        return _activation_response(self, activation)


@extend_schema(tags=["operations"])
class CredentialOperationsViewSet(_Objects):
    model = Credential
    serializer_class = RotationJobSerializer
    scopes = {"rotate": ROTATE, "revoke": REVOKE}

    @extend_schema(request=RotateSerializer, responses={202: RotationJobSerializer},
                   summary="Rotate now (a privileged credential: its approval request is filed for you)")
    @action(detail=True, methods=["post"])
    @idempotent
    def rotate(self, request, pk=None):
        credential = self.get_object()
        body = RotateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = operations.credential_rotate_now(actor=self.actor, credential=credential,
                                                  reason=body.validated_data.get("reason", ""))
        job = lifecycle_selectors.rotation_job_list(user=request.user).get(pk=result.job.pk)
        context = {**self.get_serializer_context(), "approval_request": result.approval_request}
        return accepted(RotationJobSerializer(job, context=context).data)

    @extend_schema(request=RevokeSerializer, responses={202: RevocationSerializer},
                   summary="Revoke for good through its connector, with proof that the old secret no longer works")
    @action(detail=True, methods=["post"])
    @idempotent
    def revoke(self, request, pk=None):
        credential = self.get_object()
        body = RevokeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        revocation = operations.credential_revoke_now(actor=self.actor, credential=credential,
                                                      reason=body.validated_data["reason"])
        return accepted(RevocationSerializer(revocation, context=self.get_serializer_context()).data)


# The jobs to poll ---------------------------------------------------------------------------------

@extend_schema(tags=["operations"])
class KillSwitchActivationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """Kill switches, drills and reactivations, with their steps."""

    serializer_class = KillSwitchActivationSerializer
    cursor_ordering = "-pk"

    def get_queryset(self):
        return lifecycle_selectors.kill_switch_list(user=self.request.user).prefetch_related("steps")


@extend_schema(tags=["operations"])
class KillSwitchStepViewSet(mixins.RetrieveModelMixin, StewardViewSet):
    """A kill switch's steps; those done by hand are closed here (the activation completes with the last)."""

    serializer_class = KillSwitchStepSerializer
    scopes = {"mark_done": KILLSWITCH, "waive": KILLSWITCH}

    def get_queryset(self):
        return permissions.restrict(KillSwitchStep.objects.all(), self.request.user, permissions.VIEW)

    @extend_schema(request=StepDoneSerializer, responses={200: KillSwitchActivationSerializer},
                   summary="Mark a step done by hand as done, saying what was done (its assignee, the owner side or "
                           "a security admin)")
    @action(detail=True, methods=["post"], url_path="mark-done", url_name="mark-done")
    @idempotent
    def mark_done(self, request, pk=None):
        step = self.get_object()
        body = StepDoneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        step = operations.kill_switch_step_done(actor=self.actor, step=step, comment=body.validated_data["comment"])
        return Response(_activation_data(self, step.activation))

    @extend_schema(request=StepWaiveSerializer, responses={200: KillSwitchActivationSerializer},
                   summary="Waive a step done by hand, with the reason (security admins)")
    @action(detail=True, methods=["post"])
    @idempotent
    def waive(self, request, pk=None):
        step = self.get_object()
        body = StepWaiveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        step = operations.kill_switch_step_waive(actor=self.actor, step=step, reason=body.validated_data["reason"])
        return Response(_activation_data(self, step.activation))


@extend_schema(tags=["operations"])
class RotationJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    serializer_class = RotationJobSerializer
    cursor_ordering = "-pk"

    def get_queryset(self):
        return lifecycle_selectors.rotation_job_list(user=self.request.user)


@extend_schema(tags=["operations"])
class RevocationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    serializer_class = RevocationSerializer
    cursor_ordering = "-pk"

    def get_queryset(self):
        return permissions.restrict(CredentialRevocation.objects.all(), self.request.user, permissions.VIEW)


@extend_schema(tags=["operations"])
class SweepRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, StewardViewSet):
    """Sweep runs (auditors and security admins read them); POST starts a sweep now (security admins)."""

    serializer_class = SweepRunSerializer
    cursor_ordering = "-pk"
    scopes = {"create": SWEEP}

    def get_queryset(self):
        return permissions.restrict(SweepRun.objects.all(), self.request.user, permissions.VIEW)

    @extend_schema(request=SweepNowSerializer, responses={202: SweepRunSerializer},
                   summary="Sweep now: evaluate every check (or those given) in the background; refused (409) "
                           "while a sweep runs")
    @idempotent
    def create(self, request):
        body = SweepNowSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = sweep_now.sweep_now_request(actor=self.actor, checks=body.validated_data.get("checks"))
        except sweep_now.SweepAlreadyRunning as running:
            raise Conflict(f"{running.messages[0]} Its status: "
                           f"{SweepRunSerializer().get_status_url(running.run)}", code="sweep_running") from None
        return accepted(self.get_serializer(run).data)
