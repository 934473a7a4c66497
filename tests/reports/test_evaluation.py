"""The evaluation keeps per check only what a page shows (the first failures, the accepted risks, the
counts) and hands every result to the sink; the pages must show what keeping every failure showed."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from governance.models.checks import Check, Finding
from reports import catalogue as report_catalogue
from reports import evaluation
from reports.evaluation import evaluate
from reports.framework_pack import SEVERITY_RANK
from reports.parameters import scope_of
from tests.reports.factories import add_problems

pytestmark = pytest.mark.django_db

OWASP = "owasp_nhi_top10_2025"


class EverythingSink:
    """Keeps every result, as the evaluation did before it kept only a page's worth."""

    def __init__(self):
        self.ids: dict[tuple[str, str], list[int]] = {}
        self.failures: dict[str, list] = {}

    def __call__(self, check, object_type, pks, failing):
        self.ids.setdefault((check, object_type), []).extend(pks)
        # The former order of a check's failures: type by type, by (name, id) within a type.
        self.failures.setdefault(check, []).extend(sorted(failing.values(), key=lambda f: (f.name, f.object_id)))


def _estate_with_many_failures(personas, estate, count=9):
    """count more unmanaged secrets (names repeat: the id breaks the tie), after a sweep accepted risks on
    some of them (in reverse name order: the accepted risks' order must come from the names)."""
    from governance.services.sweep import sweep_run
    from tests.factories import CredentialFactory, SecretStoreFactory

    problems = add_problems(personas, estate)
    store = SecretStoreFactory(name="spreadsheet", kind="spreadsheet")
    sheets = [CredentialFactory(name=f"sheet-{(count - n) % 4}", system=estate["system"], store=store,
                                store_path=f"sheet/{n}", owner=personas.owner, team=personas.team)
              for n in range(count)]
    sweep_run(trigger="report-tests")
    Finding.objects.filter(failed_check__code="secret-in-vault", object_id__in=[c.pk for c in sheets[::3]]).update(
        state="risk_accepted", risk_accepted_until=problems["risk_expires"],
        risk_acceptance_request_id=problems["request"].pk)
    return problems


@pytest.mark.parametrize("scope", ["estate", "team"])
def test_kept_failures_and_accepted_risks_are_those_of_every_failure(personas, estate, catalogue, monkeypatch,
                                                                      scope):
    """With a page of 3 and merge chunks of 2 ids: the first failures per check and per control, the accepted
    risks and the counts are those computed from every failure; every evaluated id reaches the sink once."""
    _estate_with_many_failures(personas, estate)
    monkeypatch.setattr(evaluation, "CHUNK", 2)
    parameters = {"scope": "estate" if scope == "estate" else f"team:{personas.team.name}"}
    _framework, controls = report_catalogue.framework_controls(OWASP)
    codes = sorted({m.code for c in controls for m in c.checks})
    checks = list(Check.objects.filter(code__in=codes).order_by("sort_order", "code"))
    sink = EverythingSink()
    evidence = evaluate(checks, scope_of(parameters), timezone.now(), sink, keep_failures=3)

    accepted_seen = 0
    for code, ev in evidence.items():
        every = sink.failures.get(code, [])
        if ev.status != "evaluated" or not every:
            continue
        key = {"governance.credential": 0, "governance.workflow": 1, "governance.system": 2}
        if all(f.object_type in key for f in every):  # query checks: type order, then (name, id)
            every.sort(key=lambda f: key[f.object_type])
        assert ev.failed == len(every)
        expected_first = sorted(every, key=lambda f: (f.name, f.object_id))[:3]
        assert [(f.object_type, f.object_id) for f in ev.first_failures] == [
            (f.object_type, f.object_id) for f in expected_first]
        expected_accepted = [(f.object_type, f.object_id) for f in every if f.accepted]
        assert [(f.object_type, f.object_id) for f in ev.accepted_failures] == expected_accepted
        assert ev.accepted == len(expected_accepted)
        accepted_seen += ev.accepted
    assert evidence["secret-in-vault"].accepted >= 3
    assert evidence["secret-in-vault"].failed >= 10 and len(evidence["secret-in-vault"].first_failures) == 3
    for (_check, _type), ids in sink.ids.items():
        assert ids == sorted(set(ids))  # in order, each once

    # Per control: the first failures ordered by (severity, check, name, id) are the same from the kept ones.
    def page_order(f):
        return SEVERITY_RANK.get(f.severity, 9), f.check, f.name, f.object_id

    for control in controls:
        every = sorted((f for m in control.checks for f in sink.failures.get(m.code, [])
                        if evidence[m.code].status == "evaluated"), key=page_order)
        kept = sorted((f for m in control.checks for f in evidence[m.code].first_failures), key=page_order)
        assert [(f.check, f.object_id) for f in kept[:3]] == [(f.check, f.object_id) for f in every[:3]]


def test_kept_failures_carry_owner_and_team_names(personas, estate, catalogue):
    _estate_with_many_failures(personas, estate, count=2)
    check = Check.objects.filter(code="secret-in-vault")
    evidence = evaluate(list(check), scope_of({"scope": "estate"}), timezone.now(), EverythingSink(),
                        keep_failures=36)["secret-in-vault"]
    assert evidence.first_failures and all(isinstance(f.owner, str) for f in evidence.first_failures)
    sheet = [f for f in evidence.first_failures if f.name.startswith("sheet-")]
    assert {(f.owner, f.team) for f in sheet} == {(personas.owner.username, personas.team.name)}
    accepted = evidence.accepted_failures
    assert len(accepted) == 2 and {f.finding.state for f in accepted} == {"risk_accepted"}
    assert {f.owner for f in accepted} == {personas.owner.username}


def test_ordered_ids_drop_the_repeats_of_a_join_across_chunks(personas, estate, monkeypatch):
    """A credential bound to three workflows is one row three times in a join: it is evaluated once, even when
    its repeats straddle two fetches."""
    from governance.models import Binding, Credential
    from tests.factories import WorkflowFactory

    for n in range(2):
        Binding.objects.create(workflow=WorkflowFactory(name=f"extra-{n}", owner=personas.owner, team=personas.team),
                               credential=estate["credential"], purpose="reuse")
    joined = Credential.objects.filter(bindings__isnull=False)
    assert joined.count() > joined.distinct().count()
    expected = sorted(set(joined.values_list("pk", flat=True)))
    for chunk in (1, 2, 1000):
        monkeypatch.setattr(evaluation, "CHUNK", chunk)
        assert [pk for ids in evaluation.ordered_ids(joined) for pk in ids] == expected
    assert list(evaluation.ordered_ids(Credential.objects.filter(pk__in=[]))) == []


def test_the_pack_verifies_the_audit_chain_once(personas, estate, catalogue, tmp_path, monkeypatch):
    """The cover verifies the whole chain; the audit-trail check then verifies only the events after the
    cover's head. A head the cover found broken gives the check no start: it verifies everything itself."""
    from governance import audit
    from governance.checks import estate as estate_checks
    from reports import builders
    from reports import chain as report_chain
    from reports.parameters import normalise_parameters

    calls = []

    def counting(verify):
        def wrapper(*args, **kwargs):
            calls.append(verify.__name__)
            return verify(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(report_chain, "verify_chain", counting(audit.verify_chain))
    monkeypatch.setattr(estate_checks, "verify_chain", counting(audit.verify_chain))
    monkeypatch.setattr(estate_checks, "verify_after", counting(estate_checks.verify_after))
    params = normalise_parameters("framework_pack", {"framework": OWASP})
    built = builders.build("framework_pack", params, requester="test", workdir=tmp_path)
    assert calls == ["verify_chain", "verify_after"]
    trail = next(c for c in json.loads((tmp_path / "evidence.json").read_text())["checks"]
                 if c["code"] == "audit-trail")
    assert (trail["status"], trail["checked"], trail["failed"]) == ("evaluated", 1, 0)
    assert built.attachments

    broken = report_chain.ChainHead(5, "x" * 64, None, False, 4, "edited", 5)
    assert evaluation.chain_verified_start(broken, timezone.now()) == {}
