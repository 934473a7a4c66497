"""GET /api/v1/credentials/{id}/provisioning/: the provisioning status of a credential Steward created."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.response import Response

from governance.api.serializers.provisioning import CredentialProvisioningSerializer
from governance.selectors.provisioning import provisioning_of


class ProvisioningMixin:
    """On the credential viewset: its provisioning run (a credential you may not see answers 404)."""

    @extend_schema(responses=CredentialProvisioningSerializer,
                   summary="Provisioning status: the run that created the credential in its system, with its proof "
                           "or its failure reason")
    @action(detail=True, methods=["get"], url_path="provisioning")
    def provisioning(self, request, pk=None):
        run = provisioning_of(credential=self.get_object())
        if run is None:
            raise exceptions.NotFound("Steward did not provision this credential (it was registered or imported).")
        return Response(CredentialProvisioningSerializer(run).data)
