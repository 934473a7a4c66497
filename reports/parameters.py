"""A report's inputs, normalised to plain JSON. The PDF depends on these and on the database only.

Defaults are resolved once, when the job is created, and stored: re-rendering a job's parameters
gives the same bytes. The "generated at" shown on the cover is ``as_of``: explicit, or the end of
the period's last day (never the clock of the render).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from governance.models.attestation import AttestationCampaign
from reports import catalogue
from reports.models import ReportKind
from reports.scopes import Scope, campaign_scope, parse_scope

DEFAULT_PERIOD_DAYS = 90
MAX_PERIOD_DAYS = 3 * 366


def _date(value: Any, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    parsed = parse_date(str(value).strip())
    if parsed is None:
        raise ValidationError({field: "Give a date as YYYY-MM-DD."})
    return parsed


def _datetime(value: Any, field: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        parsed = parse_datetime(text)
        if parsed is None and parse_date(text) is not None:
            parsed = dt.datetime.combine(parse_date(text), dt.time(23, 59, 59))
        if parsed is None:
            raise ValidationError({field: "Give a date and time as YYYY-MM-DDTHH:MM:SSZ."})
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).replace(microsecond=0)


def end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


def format_as_of(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _framework_key(value: Any) -> str:

    key = str(value or "").strip()
    if not key:
        raise ValidationError({"framework": "Choose a framework."})
    if key not in catalogue.framework_keys():
        raise ValidationError({"framework": f"No framework {key!r} in the catalogue."})
    return key


def _attestation_campaign(value: Any):
    """The campaign an attestation campaign report is about, by primary key."""

    text = str(value if value is not None else "").strip()
    if not text:
        raise ValidationError({"campaign": "Choose the attestation campaign to report on."})
    if not text.isdigit():
        raise ValidationError({"campaign": f"Give the attestation campaign's id (a number), not {text[:40]!r}."})
    campaign = AttestationCampaign.objects.select_related("scope_team", "scope_system").filter(pk=int(text)).first()
    if campaign is None:
        raise ValidationError({"campaign": f"No attestation campaign #{text}."})
    return campaign


def _campaign_scope(campaign, given: Any) -> Scope:
    """A campaign report covers the campaign's own scope; a different scope asked for is an error."""
    scope = campaign_scope(campaign)
    if given not in (None, "") and str(given).strip() != scope.key:
        raise ValidationError({"scope": f"An attestation campaign report covers its campaign's scope "
                                        f"({scope.key}); leave the scope out."})
    return scope


def normalise_parameters(kind: str, raw: dict[str, Any], *, today: dt.date | None = None) -> dict[str, Any]:
    """Validate raw inputs (form, command line) into the stored, canonical parameters."""
    if kind not in ReportKind.values:
        raise ValidationError({"kind": f"Unknown report kind {kind!r}."})
    raw = dict(raw or {})
    campaign = None
    if kind == ReportKind.ATTESTATION_CAMPAIGN:
        campaign = _attestation_campaign(raw.get("campaign"))
        scope = _campaign_scope(campaign, raw.get("scope"))
    else:
        scope = parse_scope(raw.get("scope"))
    period_end = _date(raw.get("period_end"), "period_end") or today or timezone.now().date()
    period_start = _date(raw.get("period_start"), "period_start") or (
        period_end - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    )
    if period_start > period_end:
        raise ValidationError({"period_start": "The period must start on or before its end."})
    if (period_end - period_start).days > MAX_PERIOD_DAYS:
        raise ValidationError({"period_start": "A report covers at most three years."})
    as_of = _datetime(raw.get("as_of"), "as_of") or end_of_day(period_end)
    if as_of < dt.datetime.combine(period_start, dt.time(0), tzinfo=dt.UTC):
        raise ValidationError({"as_of": "The report cannot be as of a time before its period starts."})
    params: dict[str, Any] = {
        "scope": scope.key,
        "period_start": period_start.isoformat(),
        "period_end": period_end.isoformat(),
        "as_of": format_as_of(as_of),
    }
    if kind == ReportKind.FRAMEWORK_PACK:
        params["framework"] = _framework_key(raw.get("framework"))
    if campaign is not None:
        if as_of < campaign.created_at.replace(microsecond=0):
            raise ValidationError({"as_of": f"The campaign was opened at {format_as_of(campaign.created_at)}; "
                                            f"the report cannot be as of an earlier time."})
        params["campaign"] = campaign.pk
    unknown = set(raw) - {"scope", "period_start", "period_end", "as_of", "framework", "campaign"}
    if unknown:
        raise ValidationError({name: "Unknown report parameter." for name in sorted(unknown)})
    return params


def canonical(kind: str, parameters: dict[str, Any], requester_label: str) -> str:
    """The text a report's PDF identifier is derived from (same inputs, same identifier)."""
    return json.dumps({"kind": kind, "parameters": parameters, "requester": requester_label},
                      sort_keys=True, separators=(",", ":"))


class Period:
    """Parsed period bounds of stored parameters."""

    def __init__(self, parameters: dict[str, Any]):
        self.start = dt.date.fromisoformat(parameters["period_start"])
        self.end = dt.date.fromisoformat(parameters["period_end"])
        self.as_of = _datetime(parameters["as_of"], "as_of")
        self.starts_at = dt.datetime.combine(self.start, dt.time(0), tzinfo=dt.UTC)
        self.ends_before = dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)

    def contains(self, field: str) -> dict[str, dt.datetime]:
        """Filter kwargs: field inside [start of the first day, end of the last day]."""
        return {f"{field}__gte": self.starts_at, f"{field}__lt": self.ends_before}


def scope_of(parameters: dict[str, Any]) -> Scope:
    return parse_scope(parameters.get("scope"))
