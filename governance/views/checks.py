"""Portal pages of the checks capability: findings (list, detail, bulk acknowledge); also views/posture.py."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from governance import roles
from governance.audit import Actor
from governance.filtersets.checks import FindingFilterSet
from governance.forms.checks import AcknowledgeForm
from governance.models.checks import Finding, FindingState
from governance.selectors import checks as selectors
from governance.services.findings import finding_acknowledge
from governance.views import posture
from governance.views.common import filtered_page, get_restricted_or_404

RISK_ACCEPTANCE_URL = "/approvals/new/risk_acceptance/?object=finding:{pk}"
SORT_FIELDS = {
    "risk": "risk_rank",  # the lowest rank is the worst (checks/ranking.py): ascending is worst first
    "seen": "last_seen_at",
    "first": "first_seen_at",
    "check": "failed_check__sort_order",
    "severity": "risk_rank",  # severity is the rank's first digit; its text would sort alphabetically
    "object": "object_repr",
    "state": "state",
    "owner": "owner__username",
}


def _may_act(user) -> bool:
    return roles.is_signed_in(user) and (roles.is_security_admin(user) or not roles.is_auditor(user))


@login_required
def finding_list(request):
    context = filtered_page(
        request,
        selectors.finding_list(user=request.user),
        FindingFilterSet,
        sort_fields=SORT_FIELDS,
        default_sort="risk",
    )
    rows = list(context["rows"])
    open_ids = [f.pk for f in rows if f.state == FindingState.OPEN]
    changeable = (
        selectors.changeable_finding_ids(user=request.user, ids=open_ids) if _may_act(request.user) else set()
    )
    context.update(
        rows=rows, changeable=changeable, acknowledge_form=AcknowledgeForm(), next_url=request.get_full_path()
    )
    return render(request, "governance/checks/finding_list.html", context)


@login_required
def finding_detail(request, pk: int):
    finding = get_restricted_or_404(Finding, request.user, pk)
    may_change = _may_act(request.user) and bool(
        selectors.changeable_finding_ids(user=request.user, ids=[pk])
    )
    unresolved = finding.state != FindingState.RESOLVED
    return render(
        request,
        "governance/checks/finding_detail.html",
        {
            "object": finding,
            "check": finding.failed_check,
            "subject": selectors.finding_object(user=request.user, finding=finding),
            "controls": selectors.check_controls(check=finding.failed_check),
            "history": selectors.finding_history(finding=finding)[:200],
            "may_acknowledge": may_change and finding.state == FindingState.OPEN,
            "may_request_risk_acceptance": may_change and unresolved,
            "risk_acceptance_url": RISK_ACCEPTANCE_URL.format(pk=finding.pk),
            "acknowledge_form": AcknowledgeForm(
                initial={"finding": [finding.pk], "next": finding.get_absolute_url()}
            ),
        },
    )


@login_required
@require_POST
def finding_acknowledge_view(request):
    form = AcknowledgeForm(request.POST)
    target = request.POST.get("next") or reverse("finding-list")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("finding-list")
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(target)
    try:
        count = finding_acknowledge(
            actor=Actor.for_user(request.user),
            finding_ids=form.cleaned_data["finding"],
            comment=form.cleaned_data["comment"],
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        selected = len(set(form.cleaned_data["finding"]))
        skipped = selected - count
        note = f" {skipped} were not open and were left as they are." if skipped else ""
        messages.success(request, f"{count} finding(s) acknowledged.{note}")
    return redirect(target)


urlpatterns = [
    path("findings/", finding_list, name="finding-list"),
    path("findings/acknowledge/", finding_acknowledge_view, name="finding-acknowledge"),
    path("findings/<int:pk>/", finding_detail, name="finding-detail"),
    *posture.urlpatterns,
]
