"""Delegations replace the integrations' allow-list; SoD facts recorded on requests and decisions.

Integration.allowed_people (a security admin's say-so) and team membership are no longer consent,
and consent cannot be inferred: no delegation is created here, people delegate themselves in the
portal. Pending requests and past decisions made through an integration get the integration's
(current, the best known) owner recorded, so separation of duties counts them from now on.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def record_integration_owners(apps, schema_editor):
    Integration = apps.get_model("governance", "Integration")
    ApprovalRequest = apps.get_model("governance", "ApprovalRequest")
    ApprovalDecision = apps.get_model("governance", "ApprovalDecision")
    owners = dict(Integration.objects.values_list("pk", "owner_id"))
    for request in ApprovalRequest.objects.filter(filed_by_integration_id__isnull=False,
                                                  filed_by_integration_owner__isnull=True):
        if request.filed_by_integration_id in owners:
            request.filed_by_integration_owner_id = owners[request.filed_by_integration_id]
            request.save(update_fields=["filed_by_integration_owner"])
    for decision in ApprovalDecision.objects.filter(on_behalf_integration_id__isnull=False,
                                                    integration_owner__isnull=True):
        if decision.on_behalf_integration_id in owners:
            decision.integration_owner_id = owners[decision.on_behalf_integration_id]
            decision.save(update_fields=["integration_owner"])


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0005_identity'),
    ]

    operations = [
        migrations.CreateModel(
            name='Delegation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reason', models.TextField(help_text='Why this integration may act for you.')),
                ('created_at', models.DateTimeField()),
                ('expires_at', models.DateTimeField()),
                ('revoked_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.RemoveField(
            model_name='integration',
            name='allowed_people',
        ),
        migrations.AddField(
            model_name='approvaldecision',
            name='integration_owner',
            field=models.ForeignKey(blank=True, help_text='The owner of the integration the decision was made through: it counts for them too.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='approvalrequest',
            name='filed_by_integration_owner',
            field=models.ForeignKey(blank=True, help_text='The owner of the integration that filed it, when filing: a requester too.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='approvalrequest',
            name='owners_at_filing',
            field=models.JSONField(blank=True, default=list, help_text="Ids of the object's owner and backup team manager when it was filed: they may not approve."),
        ),
        migrations.AddConstraint(
            model_name='approvaldecision',
            constraint=models.CheckConstraint(condition=models.Q(('integration_owner__isnull', True), ('on_behalf_integration_id__isnull', False), _connector='OR'), name='approvaldecision_integration_owner_has_integration'),
        ),
        migrations.AddConstraint(
            model_name='approvalrequest',
            constraint=models.CheckConstraint(condition=models.Q(('filed_by_integration_owner__isnull', True), ('filed_by_integration_id__isnull', False), _connector='OR'), name='approvalrequest_integration_owner_has_integration'),
        ),
        migrations.AddField(
            model_name='delegation',
            name='integration',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='delegations', to='governance.integration'),
        ),
        migrations.AddField(
            model_name='delegation',
            name='person',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='delegations', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='delegation',
            constraint=models.UniqueConstraint(condition=models.Q(('revoked_at__isnull', True)), fields=('person', 'integration'), name='delegation_one_open_per_person_integration'),
        ),
        migrations.AddConstraint(
            model_name='delegation',
            constraint=models.CheckConstraint(condition=models.Q(('expires_at__gt', models.F('created_at'))), name='delegation_expires_after_creation'),
        ),
        migrations.AddConstraint(
            model_name='delegation',
            constraint=models.CheckConstraint(condition=models.Q(('revoked_at__isnull', True), ('revoked_at__gte', models.F('created_at')), _connector='OR'), name='delegation_revoked_after_creation'),
        ),
        migrations.AddConstraint(
            model_name='delegation',
            constraint=models.CheckConstraint(condition=models.Q(('reason', ''), _negated=True), name='delegation_has_reason'),
        ),
        migrations.RunPython(record_integration_owners, migrations.RunPython.noop),
    ]
