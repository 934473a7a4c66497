"""Content-Security-Policy (issue 15): every page carries it, it allows no inline script, and no template
relies on inline script, inline event handlers or style attributes."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in header.split(";")) if d}


def test_pages_carry_a_policy_without_inline_script(client, personas):
    assert "'unsafe-inline'" not in client.get(reverse("login"))["Content-Security-Policy"]
    client.force_login(personas.secadmin)
    for name in ("home", "credential-list", "workflow-list", "api-docs"):
        directives = policy(client.get(reverse(name)))
        assert directives["script-src"] == ["'self'"], name
        assert "'unsafe-inline'" not in directives["style-src"] and "'unsafe-eval'" not in directives["script-src"]
        assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]


def test_the_api_docs_script_is_a_file_of_its_own(client, personas):
    client.force_login(personas.secadmin)
    page = client.get(reverse("api-docs")).content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    (init,) = re.findall(r'<script src="([^"]*script[^"]*)"', page)
    response = client.get(init.replace("&amp;", "&"))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/javascript")


def test_a_style_element_carries_the_responses_nonce(client, personas):
    client.force_login(personas.secadmin)
    response = client.get(reverse("report-list"))
    nonces = re.findall(r'<style nonce="([^"]+)"', response.content.decode())
    assert nonces and f"'nonce-{nonces[0]}'" in policy(response)["style-src"]


@pytest.mark.parametrize("path", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")))
def test_templates_use_no_inline_script_handlers_or_style_attributes(path):
    text = (TEMPLATES / path).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler"
    assert not re.search(r"\sstyle\s*=", text), "style attribute"
    assert not re.search(r"javascript:", text, re.I), "javascript: URL"
    assert not re.search(r"<style(?![^>]*nonce=)", text), "<style> without the nonce"
