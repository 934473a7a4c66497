"""Sweep now in the portal (issue 19, item 11): the button for security admins, the run's page with progress,
and a second sweep refused while one runs."""
# ruff: noqa: F811  (the eager_celery fixture is imported by name from tests/governance/connectors/conftest.py)

import pytest
from django.urls import reverse

from governance.models import AuditEvent
from governance.models.checks import SweepRun
from tests.governance.connectors.conftest import eager_celery  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db]


def test_only_security_admins_see_the_button(client, personas):
    for person, shown in ((personas.secadmin, True), (personas.auditor, False), (personas.owner, False)):
        client.force_login(person)
        page = client.get(reverse("posture-dashboard"))
        assert page.status_code == 200
        assert (b'action="/sweeps/now/"' in page.content) is shown, person


@pytest.mark.embedded
def test_sweep_now_queues_a_run_shows_its_progress_and_refuses_a_second(client, personas, eager_celery,
                                                                        django_capture_on_commit_callbacks):
    client.force_login(personas.secadmin)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(reverse("sweep-now"))
    run = SweepRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("sweep-detail", args=[run.pk])
    assert run.trigger == "manual" and run.status == "running" and not run.lease_token
    assert AuditEvent.objects.filter(action="sweep.request", object_id=str(run.pk), actor_label="sam.secadmin")
    page = client.get(reverse("sweep-detail", args=[run.pk]))
    assert b"Queued: waiting for a worker" in page.content
    posture = client.get(reverse("posture-dashboard"))
    assert f"Sweep <a href=\"/sweeps/{run.pk}/\">#{run.pk}</a>".encode() in posture.content
    assert b'action="/sweeps/now/"' not in posture.content

    second = client.post(reverse("sweep-now"), follow=True)
    assert SweepRun.objects.count() == 1
    assert second.redirect_chain[-1][0] == reverse("sweep-detail", args=[run.pk])
    assert b"is still running" in second.content

    for callback in queued:  # the outbox publishes the message; the task runs the sweep in-process
        callback()
    progress = client.get(reverse("sweep-progress", args=[run.pk])).json()
    assert progress["finished"] and progress["status"] == "succeeded" and progress["done"] == progress["total"] > 0
    page = client.get(reverse("sweep-detail", args=[run.pk]))
    assert f"Finished: {progress['total']} of {progress['total']} checks evaluated".encode() in page.content


def test_the_button_is_not_there_for_others_and_the_post_answers_404(client, personas):
    for person in (personas.owner, personas.auditor, personas.approver):
        client.force_login(person)
        assert client.post(reverse("sweep-now")).status_code == 404
    assert not SweepRun.objects.exists()
