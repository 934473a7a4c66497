"""Fields and helpers the API serializers share."""

from __future__ import annotations

from rest_framework import serializers

from governance import permissions
from governance.json_input import JSONInputError, parse_json_object
from governance.services.ids import id_error


class IdField(serializers.PrimaryKeyRelatedField):
    """A related object by its id: a whole number, never a boolean (JSON true is not object 1)."""

    def to_internal_value(self, data):
        message = id_error(data)
        if message:
            raise serializers.ValidationError(message, code="incorrect_type")
        return super().to_internal_value(int(data.strip() if isinstance(data, str) else data))


class ModelSerializer(serializers.ModelSerializer):
    """Every model serializer of the API: its related fields take ids through IdField."""

    serializer_related_field = IdField


class StringListField(serializers.ListField):
    """A list of short strings (scopes)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", serializers.CharField(max_length=200))
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)


class JSONObjectField(serializers.DictField):
    """A small JSON object of non-secret settings, checked by the one JSON-object parser."""

    def to_internal_value(self, data):
        try:
            return parse_json_object(super().to_internal_value(data))
        except JSONInputError as exc:
            raise serializers.ValidationError({exc.path: [exc.message]} if exc.path else [exc.message]) from None


def request_user(serializer):
    request = serializer.context.get("request")
    return getattr(request, "user", None)


def restrict_field(serializer, name: str, model, action: str = permissions.VIEW) -> None:
    """Limit a related field's choices to what the requesting user may see (or change)."""
    user = request_user(serializer)
    field = serializer.fields.get(name)
    if field is None or user is None:
        return
    queryset = permissions.restrict(model.objects.all(), user, action)
    if hasattr(field, "child_relation"):
        field.child_relation.queryset = queryset
    else:
        field.queryset = queryset


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class TicketSerializer(serializers.Serializer):
    system = serializers.CharField(max_length=50, help_text="Ticketing system, e.g. jira or servicenow.")
    key = serializers.CharField(max_length=100, help_text="The ticket's key, e.g. SEC-123 or CHG0031337.")
    url = serializers.URLField(max_length=1000, required=False, allow_blank=True)
