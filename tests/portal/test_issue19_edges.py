"""Issue #19's rough edges, each reproduced first: the risk-acceptance button, role-aware navigation,
friendly error pages with DEBUG on, dates through date inputs and validated in the services, long values."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.models import Credential
from governance.models.approvals import ApprovalRequest
from governance.models.checks import Finding
from governance.services.sweep import sweep_run
from tests.factories_approvals import make_policy

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def overdue_finding(personas, estate):
    Credential.objects.filter(pk=estate["credential"].pk).update(
        last_rotated_at=timezone.now() - dt.timedelta(days=400))
    sweep_run(trigger="test")
    return Finding.objects.get(failed_check__code="rotation-age", object_id=estate["credential"].pk)


def _href(page: str, text: str) -> str:
    match = re.search(r'<a [^>]*href="([^"]+)"[^>]*>' + re.escape(text) + "</a>", page)
    assert match, f"no link {text!r} on the page"
    return match.group(1).replace("&amp;", "&")


def test_request_risk_acceptance_button_opens_the_form_and_files_the_request(client, personas, overdue_finding):
    """Problem 3: the button sent ?finding=<pk>, the form wanted ?object=finding:<pk>, and answered 404."""
    make_policy(groups=[personas.other_team.group])
    client.force_login(personas.owner)
    page = client.get(reverse("finding-detail", args=[overdue_finding.pk])).content.decode()
    url = _href(page, "Request risk acceptance")
    form = client.get(url)
    assert form.status_code == 200
    assert 'type="date"' in form.content.decode()  # the expiry is picked from a date input, not typed as ISO
    until = (timezone.localdate() + dt.timedelta(days=30)).isoformat()
    response = client.post(url, {"expires_at": until, "justification": "Rotation is scheduled for the next release."})
    assert response.status_code == 302, response.content.decode()[:2000]
    request = ApprovalRequest.objects.get(action="risk_acceptance")
    assert request.target_object_id == str(overdue_finding.pk) and request.status == "pending"


def _provision_form(estate, **overrides):
    from tests.factories import SecretStoreFactory

    store = SecretStoreFactory(name="openbao-dates")
    data = {"name": "deploy-key-dates", "kind": "api_key", "system": estate["system"].pk, "identifier": "AKID-D1",
            "store": store.pk, "store_path": "secret/data/payments/dates", "scopes": "deploy:write",
            "privilege_level": "write", "purpose": "deploy", "justification": "The deploy job needs its own key."}
    return data | overrides


@pytest.mark.parametrize(("expires", "message"), [
    ("2020-01-01", "is in the past"),
    ("+400", "At most 90 days from today"),
])
def test_a_credential_request_refuses_an_expiry_in_the_past_or_beyond_the_policy(client, personas, estate, expires,
                                                                                 message):
    """Problem 4: a credential request with expiry 2020-01-01 was accepted; "Expires at" was free text."""
    make_policy(groups=[personas.other_team.group])
    client.force_login(personas.owner)
    url = reverse("approval-new", args=["provision_credential"]) + f"?workflow={estate['workflow'].pk}"
    page = client.get(url).content.decode()
    assert re.search(r'<input type="date" name="expires_at"', page)
    if expires.startswith("+"):
        expires = (timezone.localdate() + dt.timedelta(days=int(expires[1:]))).isoformat()
    response = client.post(url, _provision_form(estate, expires_at=expires))
    assert response.status_code == 200
    assert message in " ".join(response.context["change_form"].errors.get("expires_at", []))
    assert not ApprovalRequest.objects.filter(action="provision_credential").exists()


def test_a_credential_request_within_the_policy_is_filed_with_the_end_of_that_day(client, personas, estate):
    make_policy(groups=[personas.other_team.group])
    client.force_login(personas.owner)
    url = reverse("approval-new", args=["provision_credential"]) + f"?workflow={estate['workflow'].pk}"
    day = timezone.localdate() + dt.timedelta(days=60)
    response = client.post(url, _provision_form(estate, expires_at=day.isoformat(), rotation_max_age_days=90))
    assert response.status_code == 302
    stored = ApprovalRequest.objects.get(action="provision_credential").payload["expires_at"]
    assert timezone.localtime(dt.datetime.fromisoformat(stored)).date() == day


def test_the_api_applies_the_same_expiry_rule(personas, estate):
    from django.core.exceptions import ValidationError

    from governance.services.approvals import approval_request_file
    from tests.conftest import actor

    make_policy(groups=[personas.other_team.group])
    payload = {k: v for k, v in _provision_form(estate).items() if k != "justification"} | {
        "scopes": ["deploy:write"], "expires_at": "2020-01-01T00:00:00Z"}
    with pytest.raises(ValidationError) as refused:
        approval_request_file(actor=actor(personas.owner), action="provision_credential", target=estate["workflow"],
                              payload=payload, justification="needs a key")
    assert "in the past" in str(refused.value.message_dict["expires_at"])


@pytest.mark.parametrize("kind", ["workflow", "credential", "system"])
def test_a_5000_character_name_is_refused_with_a_field_error_not_cut(client, personas, estate, kind):
    """Problem 4: a 5,000-character name was cut silently (the browser's maxlength) and broke every page."""
    client.force_login(personas.owner)
    page = client.get(reverse(f"{kind}-create")).content.decode()
    name_input = re.search(r'<input[^>]*name="name"[^>]*>', page).group(0)
    assert "maxlength" not in name_input  # the browser would cut a pasted value without a word
    response_form = client.post(reverse(f"{kind}-create"), {"name": "x" * 5000})
    assert response_form.status_code == 200
    errors = response_form.context["form"].errors["name"]
    assert any("at most 200 characters (it has 5000)" in e for e in errors)


def test_long_unbroken_values_wrap(client):
    css = (Path(__file__).resolve().parents[2] / "static/css/steward.css").read_text()
    assert re.search(r"body \{[^}]*overflow-wrap:anywhere", css)


def _nav_links(page: str) -> list[str]:
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page, re.S).group(1)
    return re.findall(r'href="([^"]+)"', nav)


@pytest.mark.parametrize("persona", ["owner", "approver", "auditor", "secadmin"])
def test_every_menu_entry_opens_for_its_role(client, personas, estate, persona):
    """Problem 10: the "More" menu showed Import inventory to auditors, who got 404."""
    client.force_login(getattr(personas, persona))
    links = _nav_links(client.get("/").content.decode())
    assert len(links) >= 8
    broken = {url: status for url in links if (status := client.get(url).status_code) != 200}
    assert not broken, f"{persona} is offered links that do not open: {broken}"
    if persona == "auditor":
        assert reverse("inventory-import") not in links


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/no-such-page/", 404, "Not found"),
    ("/approvals/new/risk_acceptance/?finding=1", 404, "Not found"),
    ("/import/", 404, "Not found"),
])
def test_permission_failures_show_the_friendly_page_even_with_debug(client, personas, settings, path, status, text):
    """Problem 10: with DEBUG on, a 404 showed Django's technical page (URL patterns, settings)."""
    settings.DEBUG = True
    client.force_login(personas.auditor)
    response = client.get(path)
    page = response.content.decode()
    assert response.status_code == status
    assert text in page and "Go to the home page" in page
    assert "URLconf" not in page and "Django tried these URL patterns" not in page
    assert '<nav aria-label="Main">' in page  # the site's own page, with its navigation


def test_a_permission_denied_shows_the_friendly_403_page(rf, personas, settings):
    from django.core.exceptions import PermissionDenied

    from portal.error_pages import FriendlyErrorPagesMiddleware

    settings.DEBUG = True
    request = rf.get("/workflows/")
    request.user = personas.auditor
    middleware = FriendlyErrorPagesMiddleware(lambda r: None)
    response = middleware.process_exception(request, PermissionDenied("Auditors change nothing."))
    assert response.status_code == 403 and "Auditors change nothing." in response.content.decode()
    api = rf.get("/api/v1/workflows/")
    assert middleware.process_exception(api, PermissionDenied("x")) is None  # the API keeps its JSON errors


def test_a_manual_rotation_reads_requested_by_the_person_once(client, personas, estate):
    """Problem 10: the rotation page read "Requested by a person by Dana Owner"."""
    from governance.services.rotation import rotation_request
    from tests.conftest import actor

    job = rotation_request(actor=actor(personas.owner), credential=estate["credential"])
    client.force_login(personas.owner)
    page = client.get(job.get_absolute_url()).content.decode()
    assert "Requested by a person by" not in page
    assert f"Requested by {personas.owner}" in page


def _buttons(page: str) -> list[str]:
    actions = re.search(r'<div class="actions">(.*?)</div>', page, re.S).group(1)
    return [re.sub(r"\s+", " ", label).strip()
            for label in re.findall(r"<(?:a|button)[^>]*>([^<]+)</(?:a|button)>", actions)]


@pytest.mark.parametrize("persona", ["owner", "secadmin"])
def test_the_workflow_page_offers_no_near_duplicate_actions(client, personas, estate, persona):
    """Problem 10: nine buttons on a workflow page, with pairs such as Transfer / Request a transfer."""
    client.force_login(getattr(personas, persona))
    buttons = _buttons(client.get(estate["workflow"].get_absolute_url()).content.decode())
    assert len(buttons) == len(set(buttons))
    pairs = [("Transfer ownership", "Request an ownership transfer"), ("Retire", "Request retirement")]
    assert not [pair for pair in pairs if set(pair) <= set(buttons)], buttons
    expected = "Transfer ownership" if persona == "secadmin" else "Request an ownership transfer"
    assert expected in buttons
