"""Per-sweep summaries (CheckSummary): the team and owner posture read them, and they equal live aggregation."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.checks import Context, NotEvaluated, QueryCheck, all_checks
from governance.models import Credential
from governance.models.checks import Check, CheckStatus, CheckSummary
from governance.selectors.checks import Scope, check_results, posture_scope, results_as_of
from governance.services.sweep import sweep_run
from tests.factories import CredentialFactory, PersonFactory, SystemFactory, WorkflowFactory

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def live_results(scope: Scope) -> dict:
    """The former definition, kept as the oracle: each check's own queries over the scope's objects, now."""
    ctx = Context.current()
    results = {}
    for check in Check.objects.order_by("sort_order"):
        definition = all_checks().get(check.code)
        if not isinstance(definition, QueryCheck):
            continue
        evaluated = failed = 0
        try:
            for model in definition.subject_models:
                condition = scope.q(model)
                evaluated += definition.evaluated(model, ctx).filter(condition).count()
                failed += definition.failing_queryset(model, ctx, condition).count()
        except NotEvaluated:
            results[check.code] = CheckStatus.NOT_EVALUATED
            continue
        results[check.code] = (evaluated, failed)
    return results


def summarised(scope: Scope) -> dict:
    return {code: (r.evaluated, r.failed) if r.status == CheckStatus.EVALUATED else r.status
            for code, r in check_results(scope=scope).items()}


@pytest.fixture
def mixed_estate(estate, personas):
    """Some objects failing some checks, in both teams, and one owned by a person in no team."""
    old = timezone.now() - dt.timedelta(days=400)
    Credential.objects.filter(pk=estate["credential"].pk).update(last_rotated_at=old)
    CredentialFactory.create_batch(3, owner=personas.owner, team=personas.team, system=estate["system"],
                                   last_rotated_at=old)
    CredentialFactory.create_batch(2, owner=personas.approver, team=personas.other_team,
                                   system=estate["other_system"], store=None, store_path="")
    loner_system = SystemFactory(name="loner-box", owner=personas.outsider, team=None)
    CredentialFactory(owner=personas.outsider, team=None, system=loner_system, last_rotated_at=old)
    WorkflowFactory(owner=None, team=personas.team)  # orphaned, backed up by the team
    return estate


def test_summaries_written_by_a_sweep_equal_the_live_aggregation(mixed_estate, personas):
    run = sweep_run(trigger="test")
    assert CheckSummary.objects.filter(sweep=run).exists()
    scopes = [Scope("team", "Payments", [personas.team.pk]), Scope("team", "Platform", [personas.other_team.pk]),
              Scope("team", "both", [personas.team.pk, personas.other_team.pk]),
              Scope("owner", "outsider", owner_id=personas.outsider.pk),
              Scope("owner", "owner", owner_id=personas.owner.pk)]
    for scope in scopes:
        assert summarised(scope) == live_results(scope), scope.label
    failing = summarised(scopes[0])["rotation-age"]
    assert failing[1] >= 4  # the four overdue credentials of the team are counted as failed
    as_of = results_as_of(check_results(scope=scopes[0]))
    assert as_of["sweep_id"] == run.pk and as_of["at"] == run.finished_at and not as_of["mixed"]


def test_a_later_sweep_replaces_the_summaries_and_follows_the_estate(mixed_estate, personas):
    first = sweep_run(trigger="test")
    scope = Scope("team", "Payments", [personas.team.pk])
    before = summarised(scope)["rotation-age"]
    Credential.objects.filter(team=personas.team).update(last_rotated_at=timezone.now())
    second = sweep_run(trigger="test")
    assert not CheckSummary.objects.filter(sweep=first).exists()
    assert summarised(scope) == live_results(scope)
    assert summarised(scope)["rotation-age"] == (before[0], 0)
    assert results_as_of(check_results(scope=scope))["sweep_id"] == second.pk


def test_a_running_sweep_s_rows_are_not_read(mixed_estate, personas):
    run = sweep_run(trigger="test")
    scope = Scope("team", "Payments", [personas.team.pk])
    published = summarised(scope)
    type(run).objects.filter(pk=run.pk).update(finished_at=None)  # as if the run were still going
    assert all(value == (0, 0) for code, value in summarised(scope).items() if value != CheckStatus.NOT_EVALUATED)
    type(run).objects.filter(pk=run.pk).update(finished_at=timezone.now())
    assert summarised(scope) == published


def test_posture_page_of_a_team_member_reads_the_summaries_in_constant_queries(
        client, personas, mixed_estate, django_assert_max_num_queries):
    run = sweep_run(trigger="test")
    client.force_login(personas.owner)
    assert posture_scope(user=personas.owner).kind == "team"
    pages = [reverse("posture-dashboard"), reverse("framework-detail", args=["owasp_nhi_top10_2025"]),
             reverse("home")]
    baselines = []
    for url in pages:
        with django_assert_max_num_queries(60) as captured:
            body = client.get(url).content.decode()
        assert f"as of sweep #{run.pk} at {timezone.localtime(run.finished_at):%Y-%m-%d %H:%M}" in body, url
        baselines.append(len(captured.captured_queries))
    system = SystemFactory(owner=personas.owner, team=personas.team)
    CredentialFactory.create_batch(20, owner=personas.owner, team=personas.team, system=system)
    WorkflowFactory.create_batch(5, owner=personas.approver, team=personas.team)
    sweep_run(trigger="test")
    for url, baseline in zip(pages[:2], baselines[:2], strict=True):  # home also lists the owner's workflows
        with django_assert_max_num_queries(baseline):
            assert client.get(url).status_code == 200


def test_before_any_sweep_the_team_posture_says_so(client, personas, estate):
    client.force_login(personas.owner)
    assert "not swept yet" in client.get(reverse("posture-dashboard")).content.decode()
    other = PersonFactory(username="no.team")
    client.force_login(other)
    assert "not swept yet" in client.get(reverse("posture-dashboard")).content.decode()
