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
