"""The caller's inbox notifications as the API shows them."""

from __future__ import annotations

from governance.api.serializers.common import ModelSerializer
from governance.models.notifications import Notification


class NotificationSerializer(ModelSerializer):
    class Meta:
        model = Notification
        fields = ("id", "kind", "subject", "body", "link", "object_type", "object_id", "created_at", "read_at")
        read_only_fields = fields
        extra_kwargs = {"link": {"help_text": "A path in the portal (/approvals/12/): prefix the portal's address."}}
