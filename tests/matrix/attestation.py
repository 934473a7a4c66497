"""Permission-matrix rules for the attestation pages."""

import datetime as dt

from django.utils import timezone

from tests.matrix_personas import ADMINS, EVERYONE, OWN, POST_ONLY, READERS


def _campaign(estate, personas):
    from governance.audit import Actor
    from governance.services.attestation import attestation_campaign_open

    today = timezone.now().date()
    return attestation_campaign_open(
        actor=Actor.for_user(personas.secadmin), scope_type="estate", period_start=today,
        period_end=today + dt.timedelta(days=30), due_at=timezone.now() + dt.timedelta(days=14),
    )


def _item(estate, personas):
    campaign = _campaign(estate, personas)
    return campaign.items.get(object_type="governance.workflow", object_id=estate["workflow"].pk)


KWARGS = {
    "attestation_item": lambda estate, personas: {"pk": _item(estate, personas).pk},
    "attestation_campaign": lambda estate, personas: {"pk": _campaign(estate, personas).pk},
    "attestation_campaign_csv": lambda estate, personas: {"pk": _campaign(estate, personas).pk, "fmt": "csv"},
}

RULES = {
    "attestation-inbox": (None, EVERYONE),
    "attestation-confirm-seen": (None, POST_ONLY),
    "attestation-item": ("attestation_item", OWN),
    "attestation-campaign-list": (None, READERS),
    "attestation-campaign-create": (None, ADMINS),
    "attestation-campaign-detail": ("attestation_campaign", READERS),
    "attestation-campaign-export": ("attestation_campaign_csv", READERS),
}
