"""Search by name and identifier at a million rows: pg_trgm GIN indexes, on PostgreSQL only.

The `q=` filters and the search page match with icontains, which Django writes on PostgreSQL as
UPPER(column::text) LIKE UPPER('%...%'): a B-tree cannot serve it, a trigram GIN index on that same
expression can (an index on the bare column would not be used). The indexes are not in the models' Meta (SQLite has neither pg_trgm
nor GIN, and the embedded database must still migrate), so they are plain SQL run on PostgreSQL only.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

TRIGRAM_INDEXES = {  # table -> columns searched with icontains
    "governance_credential": ("name", "identifier", "store_path", "fingerprint"),
    "governance_workflow": ("name", "platform", "description"),
    "governance_system": ("name",),
    "governance_finding": ("object_repr",),
}


class PostgresOnlySQL(migrations.RunSQL):
    """RunSQL that does nothing on other databases (the embedded SQLite default)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def _index_name(table: str, column: str) -> str:
    return f"{table.removeprefix('governance_')}_{column}_trgm"


class Migration(migrations.Migration):

    dependencies = [
        ("governance", "0017_check_summary"),
    ]

    operations = [
        TrigramExtension(),  # CreateExtension skips databases other than PostgreSQL itself
        *(
            PostgresOnlySQL(
                sql=f"CREATE INDEX IF NOT EXISTS {_index_name(table, column)} ON {table} "
                    f"USING gin ((UPPER({column}::text)) gin_trgm_ops)",
                reverse_sql=f"DROP INDEX IF EXISTS {_index_name(table, column)}",
            )
            for table, columns in TRIGRAM_INDEXES.items()
            for column in columns
        ),
    ]
