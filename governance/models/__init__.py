from governance.models import approvals as _approvals  # noqa: F401  (models register on import)
from governance.models import attestation as _attestation  # noqa: F401
from governance.models import checks as _checks  # noqa: F401
from governance.models import deliveries as _deliveries  # noqa: F401
from governance.models import discovery as _discovery  # noqa: F401
from governance.models import integrations as _integrations  # noqa: F401
from governance.models import lifecycle as _lifecycle  # noqa: F401
from governance.models import notifications as _notifications  # noqa: F401
from governance.models import outbox as _outbox  # noqa: F401
from governance.models import provisioning as _provisioning  # noqa: F401
from governance.models import renewal as _renewal  # noqa: F401
from governance.models import saved_views as _saved_views  # noqa: F401
from governance.models.audit import ActorKind, AuditEvent
from governance.models.base import RestrictedQuerySet, TimeStampedModel
from governance.models.grants import (
    CredentialGroupObjectPermission,
    CredentialUserObjectPermission,
    SystemGroupObjectPermission,
    SystemUserObjectPermission,
    WorkflowGroupObjectPermission,
    WorkflowUserObjectPermission,
)
from governance.models.inventory import Binding, Credential, OwnedModel, SecretStore, System, Workflow
from governance.models.people import Person, Team

__all__ = [
    "ActorKind",
    "AuditEvent",
    "Binding",
    "Credential",
    "CredentialGroupObjectPermission",
    "CredentialUserObjectPermission",
    "OwnedModel",
    "Person",
    "RestrictedQuerySet",
    "SecretStore",
    "System",
    "SystemGroupObjectPermission",
    "SystemUserObjectPermission",
    "Team",
    "TimeStampedModel",
    "Workflow",
    "WorkflowGroupObjectPermission",
    "WorkflowUserObjectPermission",
]
