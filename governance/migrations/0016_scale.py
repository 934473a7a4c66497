"""Indexes for the lists at a million rows: each sort column with the primary key; (owner, id), (team, id)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0015_discovery'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='credential',
            name='governance__expires_f1cccb_idx',
        ),
        migrations.RemoveIndex(
            model_name='credential',
            name='governance__owner_i_97fcd3_idx',
        ),
        migrations.RemoveIndex(
            model_name='credential',
            name='governance__team_id_9b5d95_idx',
        ),
        migrations.RemoveIndex(
            model_name='finding',
            name='governance__owner_i_9e15a1_idx',
        ),
        migrations.RemoveIndex(
            model_name='finding',
            name='governance__team_id_264f98_idx',
        ),
        migrations.AddIndex(
            model_name='credential',
            index=models.Index(fields=['name', 'id'], name='credential_name_id'),
        ),
        migrations.AddIndex(
            model_name='credential',
            index=models.Index(fields=['kind', 'id'], name='credential_kind_id'),
        ),
        migrations.AddIndex(
            model_name='credential',
            index=models.Index(fields=['status', 'id'], name='credential_status_id'),
        ),
        migrations.AddIndex(
            model_name='credential',
            index=models.Index(fields=['expires_at', 'id'], name='credential_expires_id'),
        ),
        migrations.AddIndex(
            model_name='credential',
            index=models.Index(fields=['last_rotated_at', 'id'], name='credential_rotated_id'),
        ),
        migrations.AddIndex(
            model_name='credential',
            index=models.Index(fields=['owner', 'id'], name='credential_owner_id'),
        ),
        migrations.AddIndex(
            model_name='credential',
            index=models.Index(fields=['team', 'id'], name='credential_team_id'),
        ),
        migrations.AddIndex(
            model_name='finding',
            index=models.Index(fields=['last_seen_at', 'id'], name='finding_seen_id'),
        ),
        migrations.AddIndex(
            model_name='finding',
            index=models.Index(fields=['first_seen_at', 'id'], name='finding_first_seen_id'),
        ),
        migrations.AddIndex(
            model_name='finding',
            index=models.Index(fields=['state', 'id'], name='finding_state_id'),
        ),
        migrations.AddIndex(
            model_name='finding',
            index=models.Index(fields=['object_repr', 'id'], name='finding_object_repr_id'),
        ),
        migrations.AddIndex(
            model_name='finding',
            index=models.Index(fields=['owner', 'id'], name='finding_owner_id'),
        ),
        migrations.AddIndex(
            model_name='finding',
            index=models.Index(fields=['team', 'id'], name='finding_team_id'),
        ),
        migrations.AddIndex(
            model_name='workflow',
            index=models.Index(fields=['platform', 'id'], name='workflow_platform_id'),
        ),
        migrations.AddIndex(
            model_name='workflow',
            index=models.Index(fields=['status', 'id'], name='workflow_status_id'),
        ),
        migrations.AddIndex(
            model_name='workflow',
            index=models.Index(fields=['criticality', 'id'], name='workflow_criticality_id'),
        ),
        migrations.AddIndex(
            model_name='workflow',
            index=models.Index(fields=['owner', 'id'], name='workflow_owner_id'),
        ),
        migrations.AddIndex(
            model_name='workflow',
            index=models.Index(fields=['team', 'id'], name='workflow_team_id'),
        ),
    ]
