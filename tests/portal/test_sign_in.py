"""The sign-in page starts focus at the top (no autofocus), so the skip link is the first Tab stop."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.embedded
def test_the_sign_in_form_has_no_autofocus_and_still_signs_in(client, personas):
    page = client.get(reverse("login")).content.decode()
    assert 'id="id_username"' in page and "autofocus" not in page
    personas.owner.set_password("pw-for-tests-1")
    personas.owner.save()
    response = client.post(reverse("login"), {"username": personas.owner.username, "password": "pw-for-tests-1"})
    assert response.status_code == 302
    client.logout()
    wrong = client.post(reverse("login"), {"username": personas.owner.username, "password": "nope"})
    assert wrong.status_code == 200 and "errorlist" in wrong.content.decode()
