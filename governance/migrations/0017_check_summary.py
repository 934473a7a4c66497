"""Per-sweep posture counts per check and team or owner, read by the team and owner posture pages."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0016_scale'),
    ]

    operations = [
        migrations.CreateModel(
            name='CheckSummary',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scope_type', models.CharField(choices=[('team', 'Team'), ('owner', 'Owner')], max_length=8)),
                ('scope_id', models.BigIntegerField(help_text="The team's or the owner's id.")),
                ('evaluated', models.PositiveIntegerField(default=0)),
                ('failed', models.PositiveIntegerField(default=0)),
                ('summarised_check', models.ForeignKey(db_column='check_id', on_delete=django.db.models.deletion.CASCADE, related_name='summaries', to='governance.check')),
                ('sweep', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='summaries', to='governance.sweeprun')),
            ],
            options={
                'ordering': ['sweep', 'summarised_check', 'scope_type', 'scope_id'],
                'indexes': [models.Index(fields=['scope_type', 'scope_id'], name='checksummary_scope')],
                'constraints': [models.UniqueConstraint(fields=('sweep', 'summarised_check', 'scope_type', 'scope_id'), name='checksummary_unique_per_sweep_check_scope'), models.CheckConstraint(condition=models.Q(('scope_type__in', ['team', 'owner'])), name='checksummary_scope_valid')],
            },
        ),
    ]
