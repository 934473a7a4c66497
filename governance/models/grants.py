"""django-guardian grants with direct foreign keys for the hot models (no generic joins)."""

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from governance.models.inventory import Credential, System, Workflow


class WorkflowUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Workflow, on_delete=models.CASCADE)


class WorkflowGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Workflow, on_delete=models.CASCADE)


class CredentialUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Credential, on_delete=models.CASCADE)


class CredentialGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Credential, on_delete=models.CASCADE)


class SystemUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(System, on_delete=models.CASCADE)


class SystemGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(System, on_delete=models.CASCADE)
