"""The admin is read-only for the domain: every write goes through the audited services."""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group

from governance.models import AuditEvent, Binding, Credential, Person, SecretStore, System, Team, Workflow
from governance.models.outbox import MailDelivery, OutboxMessage


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Groups are roles (Auditors, Security admins) and teams: renaming one changes who holds a role and
# deleting one drops its members' rights, with no audit event. Both change through the services
# (role_member_add/remove, team_create, team_member_add); here they are only shown.
admin.site.unregister(Group)


@admin.register(Group)
class ReadOnlyGroupAdmin(ReadOnlyAdmin, GroupAdmin):
    list_display = ("name",)


@admin.register(Person)
class PersonAdmin(ReadOnlyAdmin):
    list_display = ("username", "first_name", "last_name", "status", "is_active")
    list_filter = ("status",)
    search_fields = ("username", "first_name", "last_name", "email")
    exclude = ("password",)


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin):
    list_display = ("name", "manager")


@admin.register(System)
class SystemAdmin(ReadOnlyAdmin):
    list_display = ("name", "lifecycle", "environment", "criticality", "owner", "team")
    list_filter = ("lifecycle", "environment", "criticality", "third_party")
    search_fields = ("name",)


@admin.register(SecretStore)
class SecretStoreAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "address")


@admin.register(Credential)
class CredentialAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "system", "store", "status", "owner")
    list_filter = ("kind", "status")
    search_fields = ("name", "identifier")


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "platform", "status", "owner", "team")
    list_filter = ("kind", "status")
    search_fields = ("name",)


@admin.register(Binding)
class BindingAdmin(ReadOnlyAdmin):
    list_display = ("workflow", "credential", "purpose")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "occurred_at", "actor_label", "action", "object_type", "object_id", "summary")
    list_filter = ("actor_kind", "object_type")
    search_fields = ("summary", "object_repr", "actor_label")


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    """What waits for the broker: unpublished rows, their attempts and the broker's last answer."""

    list_display = ("id", "task_name", "created_at", "attempts", "next_attempt_at", "published_at", "last_error")
    list_filter = ("task_name",)
    search_fields = ("message_id", "task_name", "dedupe_key")


@admin.register(MailDelivery)
class MailDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "subject", "status", "attempts", "created_at", "sent_at", "last_error")
    list_filter = ("status",)
    search_fields = ("subject",)
