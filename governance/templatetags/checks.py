"""Template helpers of the checks pages: links to a finding's object, evidence values, percentages."""

import datetime as dt

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html

from governance.checks.ranking import rank_explained

register = template.Library()

KINDS = {
    "governance.credential": ("credential", "Credential"),
    "governance.workflow": ("workflow", "Workflow"),
    "governance.system": ("system", "System"),
    "governance.auditevent": (None, "Estate"),
}


@register.filter
def finding_object_url(finding) -> str:
    name = KINDS.get(finding.object_type, (None, ""))[0]
    if name is None:
        return reverse("audit-log") + "?verify=1"
    try:
        return reverse(f"{name}-detail", args=[finding.object_id])
    except NoReverseMatch:
        return ""


@register.filter
def finding_object_kind(finding) -> str:
    return KINDS.get(finding.object_type, (None, finding.object_type))[1]


@register.filter
def risk_rank_explained(finding) -> str:
    return rank_explained(finding.risk_rank)


@register.filter
def evidence_label(key: str) -> str:
    return str(key).replace("_", " ").capitalize()


@register.filter
def evidence_value(value):
    """Evidence as a person reads it: dates without microseconds, lists joined, yes/no, em dash for none."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, str) and len(value) >= 20 and value[4:5] == "-" and "T" in value:
        parsed = parse_datetime(value.replace("Z", "+00:00"))
        if isinstance(parsed, dt.datetime):
            return parsed.strftime("%Y-%m-%d %H:%M UTC")
    return value


@register.filter
def pct(value) -> str:
    return "—" if value is None else f"{value:.1f} %"


@register.filter
def rate_badge(result):
    """A pass rate as a badge: green from 95 %, amber from 80 %, red below."""
    if result is None or result.pass_rate is None:
        return format_html(
            '<span class="badge">{}</span>',
            "not evaluated" if result is not None and result.status != "evaluated" else "—",
        )
    css = "ok" if result.pass_rate >= 95 else "warn" if result.pass_rate >= 80 else "bad"
    return format_html('<span class="badge {}">{}</span>', css, pct(result.pass_rate))


SUBJECTS = {
    "governance.credential": "credentials",
    "governance.workflow": "workflows",
    "governance.system": "systems",
    "governance.auditevent": "the estate (its audit trail)",
}


@register.filter
def subject_label(object_type: str) -> str:
    return SUBJECTS.get(object_type, object_type)
