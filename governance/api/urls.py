"""Governance's REST API: its /api/v1/ routes (`v1`), the OpenAPI schema view and the docs view.

portal/api_urls.py mounts them under /api/ beside the reports' routes (reports sit above governance).
"""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authentication import SessionAuthentication
from rest_framework.routers import SimpleRouter

from governance.api.authentication import BearerTokenAuthentication
from governance.api.errors import exception_handler
from governance.api.permissions import StewardPermission
from governance.api.views import (
    approvals,
    audit,
    discovery,
    findings,
    integrations,
    inventory,
    notifications,
    operations,
    webhooks,
)

SPECTACULAR_SETTINGS = settings.SPECTACULAR_SETTINGS  # declared once, in portal/settings.py

router = SimpleRouter()
router.register("systems", inventory.SystemViewSet, basename="system")
router.register("secret-stores", inventory.SecretStoreViewSet, basename="secretstore")
router.register("credentials", inventory.CredentialViewSet, basename="credential")
router.register("workflows", inventory.WorkflowViewSet, basename="workflow")
router.register("bindings", inventory.BindingViewSet, basename="binding")
router.register("people", inventory.PersonViewSet, basename="person")
router.register("teams", inventory.TeamViewSet, basename="team")
router.register("audit-events", audit.AuditEventViewSet, basename="auditevent")
router.register("approval-requests", approvals.ApprovalRequestViewSet, basename="approvalrequest")
router.register("findings", findings.FindingViewSet, basename="finding")
router.register("attestation-items", findings.AttestationItemViewSet, basename="attestationitem")
router.register("integrations", integrations.IntegrationViewSet, basename="integration")
router.register("integration-tokens", integrations.IntegrationTokenViewSet, basename="integrationtoken")
router.register("webhook-endpoints", webhooks.WebhookEndpointViewSet, basename="webhookendpoint")
router.register("webhook-deliveries", webhooks.WebhookDeliveryViewSet, basename="webhookdelivery")
# incident-response operations (detail actions only, beside the inventory's routes) and the jobs they queue
router.register("workflows", operations.WorkflowOperationsViewSet, basename="workflow-op")
router.register("credentials", operations.CredentialOperationsViewSet, basename="credential-op")
router.register("kill-switch-activations", operations.KillSwitchActivationViewSet, basename="killswitchactivation")
router.register("kill-switch-steps", operations.KillSwitchStepViewSet, basename="killswitchstep")
router.register("rotation-jobs", operations.RotationJobViewSet, basename="rotationjob")
router.register("revocations", operations.RevocationViewSet, basename="revocation")
router.register("sweep-runs", operations.SweepRunViewSet, basename="sweeprun")
router.register("discovered-items", discovery.DiscoveredItemViewSet, basename="discovereditem")
router.register("discovery-sources", discovery.DiscoverySourceViewSet, basename="discoverysource")
router.register("discovery-runs", discovery.DiscoveryRunViewSet, basename="discoveryrun")
router.register("notifications", notifications.NotificationViewSet, basename="notification")


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 schema, generated from the code; for signed-in callers (session or token)."""

    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [StewardPermission]
    custom_settings = {k: v for k, v in SPECTACULAR_SETTINGS.items() if not k.startswith("SERVE_")}

    def get_exception_handler(self):
        return exception_handler

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI with its assets from drf-spectacular-sidecar (static files): nothing from a CDN.

    The split view serves the page's script from its own URL, so the Content-Security-Policy needs no
    inline script; the page's <style> carries the response's nonce (templates/governance/api/).
    """

    authentication_classes = [SessionAuthentication]
    permission_classes = []
    title = "Steward API"
    template_name = "governance/api/swagger_ui.html"


v1 = [*router.urls, path("whoami/", integrations.WhoAmIView.as_view(), name="whoami")]

schema_urlpatterns = [
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", login_required(DocsView.as_view(url_name="api-schema")), name="api-docs"),
]
