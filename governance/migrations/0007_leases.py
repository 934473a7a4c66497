# Leases on running work (governance.leases): rotation jobs, revocations, kill switches and sweep runs.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0006_sod'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='rotationjob',
            name='governance__status_3b2356_idx',
        ),
        migrations.AddField(
            model_name='credentialrevocation',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='credentialrevocation',
            name='lease_owner',
            field=models.CharField(blank=True, help_text='Host, process and task holding it.', max_length=200),
        ),
        migrations.AddField(
            model_name='credentialrevocation',
            name='lease_takeovers',
            field=models.PositiveSmallIntegerField(default=0, help_text='How often the work was taken over after its worker was lost.'),
        ),
        migrations.AddField(
            model_name='credentialrevocation',
            name='lease_token',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name='killswitchactivation',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='killswitchactivation',
            name='lease_owner',
            field=models.CharField(blank=True, help_text='Host, process and task holding it.', max_length=200),
        ),
        migrations.AddField(
            model_name='killswitchactivation',
            name='lease_takeovers',
            field=models.PositiveSmallIntegerField(default=0, help_text='How often the work was taken over after its worker was lost.'),
        ),
        migrations.AddField(
            model_name='killswitchactivation',
            name='lease_token',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name='rotationjob',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='rotationjob',
            name='lease_owner',
            field=models.CharField(blank=True, help_text='Host, process and task holding it.', max_length=200),
        ),
        migrations.AddField(
            model_name='rotationjob',
            name='lease_takeovers',
            field=models.PositiveSmallIntegerField(default=0, help_text='How often the work was taken over after its worker was lost.'),
        ),
        migrations.AddField(
            model_name='rotationjob',
            name='lease_token',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name='sweeprun',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='sweeprun',
            name='lease_owner',
            field=models.CharField(blank=True, help_text='Host, process and task holding it.', max_length=200),
        ),
        migrations.AddField(
            model_name='sweeprun',
            name='lease_takeovers',
            field=models.PositiveSmallIntegerField(default=0, help_text='How often the work was taken over after its worker was lost.'),
        ),
        migrations.AddField(
            model_name='sweeprun',
            name='lease_token',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddIndex(
            model_name='credentialrevocation',
            index=models.Index(fields=['status', 'lease_expires_at'], name='governance__status_42c124_idx'),
        ),
        migrations.AddIndex(
            model_name='killswitchactivation',
            index=models.Index(fields=['status', 'lease_expires_at'], name='governance__status_a27c00_idx'),
        ),
        migrations.AddIndex(
            model_name='rotationjob',
            index=models.Index(fields=['status', 'lease_expires_at'], name='governance__status_cb864e_idx'),
        ),
        migrations.AddIndex(
            model_name='sweeprun',
            index=models.Index(fields=['status', 'lease_expires_at'], name='governance__status_4f04c7_idx'),
        ),
    ]
