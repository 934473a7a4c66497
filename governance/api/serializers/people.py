"""People and teams: the directory every signed-in caller may read."""

from __future__ import annotations

from rest_framework import serializers

from governance.api.serializers.common import ModelSerializer
from governance.models import Person, Team


class PersonSerializer(ModelSerializer):
    teams = serializers.SerializerMethodField()

    class Meta:
        model = Person
        fields = ("id", "username", "first_name", "last_name", "email", "job_title", "status", "departed_at", "teams")
        read_only_fields = fields

    def get_teams(self, person) -> list[int]:
        """Ids of the teams the person belongs to (from the prefetched groups)."""
        return sorted(group.team.pk for group in person.groups.all() if getattr(group, "team", None) is not None)


class TeamSerializer(ModelSerializer):
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ("id", "name", "slug", "description", "manager", "members", "created_at", "updated_at")
        read_only_fields = fields

    def get_members(self, team) -> list[int]:
        """Ids of the team's members (from the prefetched group users)."""
        return sorted(user.pk for user in team.group.user_set.all())
