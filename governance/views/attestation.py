"""Portal pages of owner attestation: the owner's inbox, one item, and the campaign pages.

Thin: selectors read, services write. Items a user may not see, and campaign pages for anyone
but auditors and security admins, answer 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from governance import forms, permissions, roles
from governance.audit import Actor
from governance.forms.attestation import AnswerForm, CampaignOpenForm
from governance.models.attestation import AttestationCampaign, AttestationItem, ItemAnswer, ItemState
from governance.selectors import attestation as selectors
from governance.services import attestation as services
from governance.views.common import deny_unless, get_restricted_or_404, tabular_response


def _error_text(exc: Exception) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc) or "You may not do this."])


QUICK_ANSWERS = (ItemAnswer.FLAG_STORAGE, ItemAnswer.REVOKE)


@login_required
def inbox(request):
    context = selectors.inbox(user=request.user, limit=selectors.INBOX_LIMIT)
    context["quick_answers"] = [(a, ItemAnswer(a).label) for a in QUICK_ANSWERS]
    return render(request, "governance/attestation/inbox.html", {**context, "nav": "attestations"})


@login_required
@require_POST
def confirm_seen(request):
    """Confirm the items the page rendered (posted ids), and only the open ones assigned to the user."""
    try:
        result = services.attestation_items_confirm_seen(actor=Actor.for_user(request.user),
                                                         item_ids=request.POST.getlist("item"))
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _error_text(exc))
    else:
        if result.confirmed:
            messages.success(request, f"Confirmed {result.confirmed} item(s) as unchanged.")
        elif not result.left_out:
            messages.info(request, "Nothing to confirm: no open item of yours was on the page.")
        if result.left_out:
            messages.warning(request, f"Left out {result.left_out} item(s) with risk signals: confirm each one "
                                      "with a reason, or give another answer.")
    return redirect("attestation-inbox")


@login_required
@require_http_methods(["GET", "POST"])
def item_detail(request, pk: int):
    item = get_restricted_or_404(AttestationItem, request.user, pk)
    may_answer = (item.state == ItemState.OPEN and item.assignee_id == request.user.pk
                  and item.campaign.status == "open")
    form = AnswerForm(request.POST or None, item=item) if may_answer else None
    if request.method == "POST":
        deny_unless(may_answer)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.attestation_item_answer(
                    actor=Actor.for_user(request.user), item_id=item.pk, answer=data["answer"],
                    comment=data["comment"], transfer_to=data["transfer_to"],
                    transfer_team=data["transfer_team"], scope_credential=data.get("scope_credential"),
                    requested_scopes=data["requested_scopes"],
                    requested_privilege_level=data["requested_privilege_level"] or None, ticket=form.ticket(),
                )
            except ValidationError as exc:
                forms.apply_service_errors(form, exc)
            except PermissionDenied as exc:
                form.add_error(None, _error_text(exc))
            else:
                item.refresh_from_db()
                filed = f" Request #{item.resulting_request_id} filed." if item.resulting_request_id else ""
                messages.success(request, f"{item.object_repr}: answered “{item.get_answer_display()}”."
                                          f"{filed}")
                return redirect("attestation-inbox" if request.POST.get("next") == "inbox" else item)
        if request.POST.get("next") == "inbox":
            for error in form.errors.values():
                messages.error(request, f"{item.object_repr}: {' '.join(error)}")
            return redirect("attestation-inbox")
    obj = item.get_object()
    return render(request, "governance/attestation/item.html", {
        "item": item, "object": obj, "form": form, "nav": "attestations",
        "may_see_object": obj is not None and permissions.can(request.user, permissions.VIEW, obj),
        "signals": selectors.item_risk_signals([item])[item.pk],
    })


def _readers_only(user) -> None:
    deny_unless(roles.reads_everything(user))


@login_required
def campaign_list(request):
    _readers_only(request.user)
    return render(request, "governance/attestation/campaign_list.html", {
        "rows": selectors.campaign_list(user=request.user), "nav": "attestations",
        "may_open": roles.is_security_admin(request.user),
    })


@login_required
@require_http_methods(["GET", "POST"])
def campaign_create(request):
    deny_unless(roles.is_security_admin(request.user))
    form = CampaignOpenForm(request.POST or None, initial={"consequence": services.attestation_settings()[
        "consequence"]})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = services.attestation_campaign_open(
                actor=Actor.for_user(request.user), scope_type=data["scope_type"], scope_id=form.scope_id(),
                period_start=data["period_start"], period_end=data["period_end"], due_at=data["due_at"],
                grace_until=data["grace_until"], consequence=data["consequence"], name=data["name"],
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict") and "scope_id" in exc.error_dict:
                field = "scope_team" if data["scope_type"] == "team" else "scope_system"
                exc = ValidationError({field if k == "scope_id" else k: v for k, v in exc.error_dict.items()})
            forms.apply_service_errors(form, exc)
        except PermissionDenied as exc:
            form.add_error(None, _error_text(exc))
        else:
            if campaign.just_opened:
                count = campaign.items.count()
                messages.success(request, f"Campaign {campaign} opened with {count} item(s).")
            else:
                messages.info(request, f"A campaign for this scope and period exists already: {campaign}.")
            return redirect(campaign)
    return render(request, "governance/attestation/campaign_form.html", {"form": form, "nav": "attestations"})


@login_required
def campaign_detail(request, pk: int):
    _readers_only(request.user)
    campaign = get_restricted_or_404(AttestationCampaign, request.user, pk)
    return render(request, "governance/attestation/campaign_detail.html", {
        "campaign": campaign, "progress": selectors.campaign_progress(campaign=campaign, now=timezone.now()),
        "nav": "attestations",
    })


@login_required
def campaign_export(request, pk: int, fmt: str):
    _readers_only(request.user)
    campaign = get_restricted_or_404(AttestationCampaign, request.user, pk)
    rows = selectors.evidence_rows(user=request.user, campaign=campaign)
    return tabular_response(rows, fmt=fmt, filename=f"attestation-{campaign.pk}")


urlpatterns = [
    path("attestations/", inbox, name="attestation-inbox"),
    path("attestations/confirm-seen/", confirm_seen, name="attestation-confirm-seen"),
    path("attestations/items/<int:pk>/", item_detail, name="attestation-item"),
    path("attestations/campaigns/", campaign_list, name="attestation-campaign-list"),
    path("attestations/campaigns/new/", campaign_create, name="attestation-campaign-create"),
    path("attestations/campaigns/<int:pk>/", campaign_detail, name="attestation-campaign-detail"),
    path("attestations/campaigns/<int:pk>/export.<str:fmt>", campaign_export,
         name="attestation-campaign-export"),
]
