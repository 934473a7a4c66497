# SavedView (#19 item 8), after 0019_risk.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0019_risk'),
    ]

    operations = [
        migrations.CreateModel(
            name='SavedView',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('list_key', models.CharField(choices=[('credential', 'Credentials'), ('workflow', 'Workflows'), ('system', 'Systems'), ('finding', 'Findings')], max_length=16)),
                ('name', models.CharField(max_length=80)),
                ('query', models.CharField(blank=True, max_length=2000)),
                ('columns', models.JSONField(blank=True, default=list)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='saved_views', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['name'],
                'constraints': [models.UniqueConstraint(fields=('owner', 'list_key', 'name'), name='saved_view_unique_name'), models.CheckConstraint(condition=models.Q(('list_key__in', ['credential', 'workflow', 'system', 'finding'])), name='saved_view_list_key_valid'), models.CheckConstraint(condition=models.Q(('name__regex', '\\S')), name='saved_view_name_not_blank')],
            },
        ),
    ]
