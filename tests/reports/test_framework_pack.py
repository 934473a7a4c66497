"""The framework evidence pack, parsed back: identifiers, counts against the database, attachments,
accepted risks with their approvals, scope, determinism and PDF/A-3 metadata."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.utils import timezone
from pypdf import PdfReader

from governance.audit import Actor
from governance.choices import MANAGED_STORE_KINDS
from governance.models import Credential
from governance.models.checks import Control
from reports import builders
from reports.parameters import normalise_parameters
from tests.reports.conftest import compact, pdf_text, read_pdf, run_report
from tests.reports.factories import add_problems

pytestmark = pytest.mark.django_db

OWASP = "owasp_nhi_top10_2025"
ATTACHMENTS = {"evidence.json", "controls.csv", "check-results.csv", "objects.csv", "events.csv", "supporting.csv"}


def _attachment(reader: PdfReader, name: str) -> bytes:
    return reader.attachments[name][0]


def _csv(reader: PdfReader, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(_attachment(reader, name).decode())))


def _expected_secret_in_vault(**scope) -> tuple[set[int], set[int]]:
    """Independently of the check code: live credentials, and those outside a managed store."""
    live = Credential.objects.filter(status__in=["active", "suspended"], **scope)
    failing = {c.pk for c in live if c.store is None or c.store.kind not in MANAGED_STORE_KINDS}
    return set(live.values_list("pk", flat=True)), failing


@pytest.mark.embedded
def test_estate_pack_matches_the_database_and_renders_deterministically(personas, estate, catalogue):
    problems = add_problems(personas, estate)
    auditor = Actor.for_user(personas.auditor)
    today = timezone.now().date()
    end = today + dt.timedelta(days=60)
    job = run_report(auditor, "framework_pack", {"framework": OWASP, "period_end": end.isoformat(),
                                                 "period_start": (today - dt.timedelta(days=30)).isoformat()})
    assert job.status == "succeeded", job.error
    reader, data = read_pdf(job)

    # PDF/A-3b with fixed metadata from the parameters.
    assert job.page_count == len(reader.pages) >= 10
    assert reader.metadata["/CreationDate"].startswith(f"D:{end:%Y%m%d}235959")
    assert reader.metadata["/Title"] == job.title
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp
    assert set(reader.attachments) == ATTACHMENTS

    # Every OWASP control that checks evidence appears with its identifier; the cover cites the chain.
    text = pdf_text(reader)
    mapped = set(Control.objects.filter(framework__key=OWASP, mappings__isnull=False)
                 .values_list("identifier", flat=True))
    assert mapped and all(identifier in text for identifier in mapped)
    assert "intact" in text and "aude.auditor" in text and compact(f"{end:%Y-%m-%d} 23:59:59") in text

    # Counts match the database (computed here without the check code).
    evidence = json.loads(_attachment(reader, "evidence.json"))
    checks = {c["code"]: c for c in evidence["checks"]}
    live, failing = _expected_secret_in_vault()
    assert checks["secret-in-vault"]["checked"] == len(live)
    assert checks["secret-in-vault"]["failed"] == len(failing) == 2
    assert checks["secret-in-vault"]["risk_accepted"] == 1
    rows = [r for r in _csv(reader, "check-results.csv") if r["check"] == "secret-in-vault"]
    assert {int(r["object_id"]) for r in rows} == live
    assert {int(r["object_id"]) for r in rows if r["result"] == "fail"} == failing
    accepted = [r for r in rows if r["finding_state"] == "risk_accepted"]
    assert [int(r["object_id"]) for r in accepted] == [problems["leaked"].pk]
    results = {(r["check"], r["object_type"]): r for r in evidence["check_results"]}
    vault = results[("secret-in-vault", "governance.credential")]
    assert set(vault["passed"]) == live - failing
    assert {f["id"] for f in vault["failed"]} == failing

    # A control's numbers are the sums over its checks; the CSV carries them.
    controls = {c["control"]: c for c in _csv(reader, "controls.csv")}
    nhi2 = next(c for c in evidence["controls"] if c["control"] == "NHI2:2025")
    assert nhi2["checked"] == sum(checks[code]["checked"] for code in nhi2["checks"])
    assert int(controls["NHI2:2025"]["failed"]) == nhi2["failed"] >= 2

    # The accepted risk names its approving request, approver and expiry (page and attachment).
    risk = next(r for r in evidence["accepted_risks"] if r["check"] == "secret-in-vault")
    assert risk["request"] == f"#{problems['request'].pk}"
    assert risk["approvers"] == personas.approver.username
    assert risk["expires_at"].startswith(problems["risk_expires"].strftime("%Y-%m-%dT%H:%M:%S"))
    assert f"#{problems['request'].pk}" in text and problems["risk_expires"].strftime("%Y-%m-%d") in text

    # Objects and events in scope are all attached.
    objects = _csv(reader, "objects.csv")
    assert {int(o["object_id"]) for o in objects if o["object_type"] == "governance.credential"} == set(
        Credential.objects.values_list("pk", flat=True))
    assert evidence["supporting"]["approvals"]["total"] == 1
    assert len(_csv(reader, "events.csv")) == len(evidence["events"]) > 0

    # Same inputs, same bytes: a second job (after the first one's own audit events) renders identically.
    again = run_report(auditor, "framework_pack", dict(job.parameters))
    assert again.sha256 == job.sha256
    with again.file.open("rb") as fh:
        assert fh.read() == data


def test_every_check_result_is_in_both_attachments(personas, estate, catalogue, monkeypatch):
    """check-results.csv and evidence.json's check_results (spooled to disk while evaluating, chunk by chunk)
    hold the same results: every evaluated object of every check once, in id order, with the finding's state."""
    from reports import evaluation
    from tests.factories import CredentialFactory, SecretStoreFactory

    add_problems(personas, estate)
    store = SecretStoreFactory(name="spreadsheet", kind="spreadsheet")
    for n in range(7):
        CredentialFactory(system=estate["system"], store=store, store_path=f"sheet/{n}", owner=personas.owner,
                          team=personas.team)
    monkeypatch.setattr(evaluation, "CHUNK", 3)
    job = run_report(Actor.for_user(personas.auditor), "framework_pack", {"framework": OWASP})
    assert job.status == "succeeded", job.error
    reader, _ = read_pdf(job)
    rows = _csv(reader, "check-results.csv")
    from_csv: dict[tuple[str, str], dict] = {}
    for r in rows:
        entry = from_csv.setdefault((r["check"], r["object_type"]), {"passed": [], "failed": []})
        if r["result"] == "pass":
            entry["passed"].append(int(r["object_id"]))
        else:
            entry["failed"].append({"id": int(r["object_id"]), "finding_state": r["finding_state"]})
    evidence = json.loads(_attachment(reader, "evidence.json"))
    from_json = {(r["check"], r["object_type"]): {"passed": r["passed"], "failed": r["failed"]}
                 for r in evidence["check_results"]}
    assert [(r["check"], r["object_type"]) for r in evidence["check_results"]] == sorted(from_json)
    assert {k: v for k, v in from_json.items() if v["passed"] or v["failed"]} == from_csv
    assert len(rows) == sum(c["checked"] for c in evidence["checks"] if c["status"] == "evaluated") > 7
    for entry in from_json.values():
        ids = entry["passed"] + [f["id"] for f in entry["failed"]]
        assert len(ids) == len(set(ids))
        assert entry["passed"] == sorted(entry["passed"])
    vault = from_json[("secret-in-vault", "governance.credential")]
    assert len(vault["failed"]) == 9 and {"risk_accepted", "open"} <= {f["finding_state"] for f in vault["failed"]}


def _lifecycle_history(personas, estate):
    """A rotation (two attempts) and a drill in the Payments team; a kill switch in Platform."""
    from governance.models.lifecycle import KillSwitchActivation, RotationAttempt, RotationJob

    now = timezone.now()
    job = RotationJob.objects.create(credential=estate["credential"], due_on=now.date(), trigger="schedule",
                                     status="succeeded", new_version="v2", attempt_count=2, finished_at=now)
    RotationAttempt.objects.create(job=job, number=1, started_at=now - dt.timedelta(hours=2), outcome="retrying",
                                   error_code="unreachable", error="store timed out")
    RotationAttempt.objects.create(job=job, number=2, started_at=now - dt.timedelta(hours=1), outcome="succeeded",
                                   new_version="v2", finished_at=now)
    for workflow, mode in ((estate["workflow"], "drill"), (estate["other_workflow"], "activate")):
        KillSwitchActivation.objects.create(workflow=workflow, mode=mode, status="completed", actor_label="sam",
                                            workflow_status_before="active", started_at=now, finished_at=now)


def test_team_pack_covers_only_the_team(personas, estate, catalogue):
    problems = add_problems(personas, estate)
    _lifecycle_history(personas, estate)
    job = run_report(Actor.for_user(personas.owner), "framework_pack",
                     {"framework": OWASP, "scope": f"team:{personas.team.name}"})
    assert job.status == "succeeded", job.error
    assert job.scope_team_id == personas.team.pk
    reader, _ = read_pdf(job)
    objects = _csv(reader, "objects.csv")
    credential_ids = {int(o["object_id"]) for o in objects if o["object_type"] == "governance.credential"}
    assert credential_ids == set(Credential.objects.filter(team=personas.team).values_list("pk", flat=True))
    assert problems["other_leak"].pk not in credential_ids
    evidence = json.loads(_attachment(reader, "evidence.json"))
    live, failing = _expected_secret_in_vault(team=personas.team)
    vault = next(c for c in evidence["checks"] if c["code"] == "secret-in-vault")
    assert (vault["checked"], vault["failed"]) == (len(live), len(failing)) == (len(live), 1)
    # The estate-wide audit-trail check is not counted for a team.
    trail = next(c for c in evidence["checks"] if c["code"] == "audit-trail")
    assert trail["status"] == "not_applicable" and trail["checked"] == 0
    supporting = evidence["supporting"]
    assert [r["outcome"] for r in supporting["rotations"]["rows"]] == ["retrying", "succeeded"]
    assert [(r["workflow"], r["mode"]) for r in supporting["drills"]["rows"]] == [
        ("payments-deploy", "Drill (verification only)")]
    assert supporting["attestation"]["total"] == 0
    text = pdf_text(reader)
    assert compact("Team Payments") in text and compact("store timed out") in text
    assert compact("Attestation campaigns None in this period.") in text


@pytest.mark.parametrize("framework", ["owasp_nhi_top10_2025", "nist_csf_2_0", "nist_sp_800_207",
                                       "nist_sp_800_53_r5", "iso_iec_27001_2022", "cis_controls_v8",
                                       "aicpa_soc2_tsc_2017"])
def test_every_framework_builds(personas, estate, catalogue, tmp_path, framework):
    """Each framework of the catalogue builds its pack (HTML and attachments; the PDF step is shared)."""
    params = normalise_parameters("framework_pack", {"framework": framework})
    built = builders.build("framework_pack", params, requester="test", workdir=tmp_path)
    mapped = Control.objects.filter(framework__key=framework, mappings__isnull=False).distinct()
    assert mapped.exists()
    for control in mapped:
        assert f'id="{"control-" + "".join(c if c.isalnum() else "-" for c in control.identifier)}"' in built.html
    if framework == "nist_csf_2_0":
        assert "CSF 1.1 identifiers" in built.html
    assert {a.name for a in built.attachments} == ATTACHMENTS


def test_page_count_does_not_grow_with_the_estate(personas, estate, catalogue):
    """Failing objects beyond the page's cap go to the attachments only."""
    from tests.factories import CredentialFactory, SecretStoreFactory

    store = SecretStoreFactory(name="spreadsheet", kind="spreadsheet")
    auditor = Actor.for_user(personas.auditor)
    counts = []
    for batch in (40, 80):
        for n in range(batch - Credential.objects.filter(store=store).count()):
            CredentialFactory(system=estate["system"], store=store, store_path=f"sheet/{batch}/{n}",
                              owner=personas.owner, team=personas.team)
        job = run_report(auditor, "framework_pack", {"framework": OWASP})
        reader, _ = read_pdf(job)
        failed = next(c for c in json.loads(_attachment(reader, "evidence.json"))["checks"]
                      if c["code"] == "secret-in-vault")["failed"]
        counts.append((job.page_count, failed))
    assert counts[0][1] == 40 and counts[1][1] == 80
    assert counts[0][0] == counts[1][0]


def test_building_a_pack_takes_the_same_queries_whatever_the_estate_size(personas, estate, catalogue, tmp_path):
    """Set-based evidence: a bigger estate costs rows, not queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import CredentialFactory, SecretStoreFactory

    params = normalise_parameters("framework_pack", {"framework": OWASP})
    store = SecretStoreFactory(name="config-files", kind="config_file")
    counts = []
    for extra in (2, 12):
        for n in range(extra - Credential.objects.filter(store=store).count()):
            CredentialFactory(system=estate["system"], store=store, store_path=f"cfg/{n}", owner=personas.owner,
                              team=personas.team)
        workdir = tmp_path / str(extra)
        workdir.mkdir()
        with CaptureQueriesContext(connection) as queries:
            builders.build("framework_pack", params, requester="test", workdir=workdir)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_check_results_quote_what_needs_quoting(tmp_path):
    """The collector's fast lines (codes, labels, ids, states need no quoting) and the csv module's rows for
    anything else read back as the same table; the JSON lists come out of the spools whole."""
    from reports.evaluation import FailingObject, FindingInfo
    from reports.pack_files import CheckResultCollector

    collector = CheckResultCollector(tmp_path / "check-results.csv")
    odd = FailingObject("odd check", "high", "governance.credential", 2, "n", "", "",
                        FindingInfo(7, "open", None, None))
    collector("odd check", "governance.credential", [1, 2, 3], {2: odd})
    weird = FailingObject("ok", "high", "governance.credential", 5, "n", "", "", FindingInfo(8, 'we"ird,', None, None))
    collector("ok", "governance.credential", [4], {})
    collector("ok", "governance.credential", [5, 6], {5: weird})
    collector.close()
    rows = list(csv.reader(io.StringIO((tmp_path / "check-results.csv").read_text())))
    assert rows[1:] == [["odd check", "governance.credential", "1", "pass", "", ""],
                        ["odd check", "governance.credential", "2", "fail", "7", "open"],
                        ["odd check", "governance.credential", "3", "pass", "", ""],
                        ["ok", "governance.credential", "4", "pass", "", ""],
                        ["ok", "governance.credential", "5", "fail", "8", 'we"ird,'],
                        ["ok", "governance.credential", "6", "pass", "", ""]]
    assert [json.loads("".join(pieces)) for pieces in collector.json_rows()] == [
        {"check": "odd check", "object_type": "governance.credential", "passed": [1, 3],
         "failed": [{"id": 2, "finding_state": "open"}]},
        {"check": "ok", "object_type": "governance.credential", "passed": [4, 6],
         "failed": [{"id": 5, "finding_state": 'we"ird,'}]}]
    collector.discard()
