"""Text search over large tables: one id set per searched field, joined in a UNION.

`field__icontains` ORed over several columns (and over joined tables) makes PostgreSQL test every
row, or walk the name index filtering a million rows to find the first few matches. One id set per
field is each served by its own pg_trgm GIN index (migration 0018), and `pk IN (UNION ...)` joins
the few matches to the table.
"""

from __future__ import annotations

from django.db.models import Model, Q


def matching(model: type[Model], fields: tuple[str, ...], value: str) -> Q:
    """The condition "some field contains value (case-insensitive)" as pk IN (UNION of per-field ids)."""
    manager = model._base_manager
    ids = [manager.filter(**{f"{field}__icontains": value}).order_by().values("pk") for field in fields]
    return Q(pk__in=ids[0].union(*ids[1:]) if len(ids) > 1 else ids[0])
