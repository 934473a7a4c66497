# Report jobs get a lease (governance.leases): a killed renderer's job is taken over, not left running.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0002_reportjob_kind_attestation_campaign'),
    ]

    operations = [
        migrations.AddField(
            model_name='reportjob',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='reportjob',
            name='lease_owner',
            field=models.CharField(blank=True, help_text='Host, process and task holding it.', max_length=200),
        ),
        migrations.AddField(
            model_name='reportjob',
            name='lease_takeovers',
            field=models.PositiveSmallIntegerField(default=0, help_text='How often the work was taken over after its worker was lost.'),
        ),
        migrations.AddField(
            model_name='reportjob',
            name='lease_token',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddIndex(
            model_name='reportjob',
            index=models.Index(fields=['status', 'lease_expires_at'], name='reports_rep_status_528680_idx'),
        ),
    ]
