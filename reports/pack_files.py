"""The attachments of a framework evidence pack: every object, check result and event in scope.

evidence.json holds everything (report facts, controls and checks with their counts, every check
result as passed/failed id lists, accepted risks, supporting evidence, objects, events); the CSV
files hold the same records flat, one table each, for spreadsheet and script users:
controls.csv, check-results.csv, objects.csv, events.csv, supporting.csv.
"""

from __future__ import annotations

import csv
import io
import json
import re
from itertools import chain
from pathlib import Path
from typing import Any

from governance.audit import jsonable
from governance.models import AuditEvent
from reports.chain import REPORT_OBJECT_TYPE
from reports.evaluation import FAIL, PASS, FailingObject
from reports.evidence_files import CsvEvidenceWriter, JsonEvidenceWriter
from reports.parameters import Period
from reports.rendering import AttachmentFile
from reports.scopes import ESTATE, Scope

CHECK_RESULT_COLUMNS = ["check", "object_type", "object_id", "result", "finding_id", "finding_state"]
CONTROL_COLUMNS = ["framework", "control", "title", "aliases", "checks", "checked", "passed", "failed",
                   "risk_accepted", "pass_rate"]
OBJECT_COLUMNS = ["object_type", "object_id", "name", "kind", "status", "owner", "team", "system", "store",
                  "store_kind", "privilege_level", "last_rotated_at", "expires_at", "platform", "lifecycle"]
EVENT_COLUMNS = ["sequence", "occurred_at", "actor_kind", "actor_label", "task_id", "action", "object_type",
                 "object_id", "object_repr", "summary", "changes", "prev_hash", "hash"]
SUPPORTING_COLUMNS = ["section", "record"]
SAFE_CSV = re.compile(r"[A-Za-z0-9_.:-]+")

DESCRIPTIONS = {
    "evidence.json": "Every control, check, check result, accepted risk, supporting record, object and event in scope",
    "controls.csv": "One row per control: the checks that evidence it and its counts",
    "check-results.csv": "One row per check and object evaluated: pass or fail, with the finding's state",
    "objects.csv": "Every credential, workflow and system in scope",
    "events.csv": "Every audit event in scope in the period, up to the cited chain head",
    "supporting.csv": "Approvals, attestation campaigns, rotations and drills in the period",
}


class IdSpool:
    """JSON array items (",1,2" or ',{"id":1,...}') appended to a file as they come, by key; read back per key
    as the text of the array's items. Memory: the segments' offsets, never the ids."""

    def __init__(self, path: Path):
        self._fh = open(path, "w+b")
        self.segments: dict[tuple[str, str], list[tuple[int, int]]] = {}

    def add(self, key: tuple[str, str], text: str) -> None:
        """text: items, each with a leading comma."""
        segments = self.segments.setdefault(key, [])
        if not text:
            return
        start = self._fh.tell()
        self._fh.write(text.encode("ascii"))
        end = self._fh.tell()
        if segments and segments[-1][1] == start:  # the same key's next chunk: one segment
            segments[-1] = (segments[-1][0], end)
        else:
            segments.append((start, end))

    def items(self, key: tuple[str, str], block: int = 1 << 20):
        """The key's items as JSON text, in pieces (the first item's comma dropped)."""
        first = True
        for start, end in self.segments.get(key, ()):
            self._fh.seek(start)
            left = end - start
            while left:
                piece = self._fh.read(min(block, left)).decode("ascii")
                left -= len(piece)
                yield piece[1:] if first else piece
                first = False
        self._fh.seek(0, 2)

    def close(self) -> None:
        self._fh.close()


class CheckResultCollector:
    """The sink for evaluation: writes check-results.csv, and the JSON's passed and failed id lists to spool
    files (copied into evidence.json at the end), so no id list is held in memory."""

    def __init__(self, path: Path):
        self.csv = CsvEvidenceWriter(path, CHECK_RESULT_COLUMNS)
        self._write = self.csv.raw_writer()  # rows whose check or type needs quoting
        self.passed = IdSpool(path.with_name(f".{path.name}.passed"))
        self.failed = IdSpool(path.with_name(f".{path.name}.failed"))
        self._states: dict[str, str] = {}

    def __call__(self, check: str, object_type: str, pks: list[int], failing: dict[int, FailingObject]) -> None:
        key = (check, object_type)
        plain = bool(SAFE_CSV.fullmatch(check) and SAFE_CSV.fullmatch(object_type))
        failed_ids = [pk for pk in pks if pk in failing]
        # Hot path (one row per check and object): codes, labels and ids need no CSV quoting, so the lines are
        # formatted by comprehensions; a failure's line goes through _line.
        if plain:
            head, tail = f"{check},{object_type},", f",{PASS},,\n"
            self.csv.write_lines([f"{head}{pk}{tail}" if pk not in failing else self._line(failing[pk])
                                  for pk in pks] if failed_ids else [f"{head}{pk}{tail}" for pk in pks])
        else:
            for pk in pks:
                failure = failing.get(pk)
                self._write((check, object_type, pk, PASS, "", "") if failure is None else self._values(failure))
        passed = [pk for pk in pks if pk not in failing] if failed_ids else pks
        self.passed.add(key, "," + ",".join(map(str, passed)) if passed else "")
        self.failed.add(key, "".join(
            f',{{"id":{pk},"finding_state":{self._state_json(failing[pk].state)}}}' for pk in failed_ids))

    @staticmethod
    def _values(failure: FailingObject) -> tuple:
        finding_id = failure.finding.finding_id if failure.finding else ""
        return failure.check, failure.object_type, failure.object_id, FAIL, finding_id, failure.state

    def _line(self, failure: FailingObject) -> str:
        values = self._values(failure)
        if SAFE_CSV.fullmatch(failure.state):
            return ",".join(map(str, values)) + "\n"
        buffer = io.StringIO()  # a state that needs quoting (none does today): the csv module's line
        csv.writer(buffer, lineterminator="\n").writerow(values)
        return buffer.getvalue()

    def _state_json(self, state: str) -> str:
        if state not in self._states:
            self._states[state] = json.dumps(state)
        return self._states[state]

    def json_rows(self):
        """The check_results rows of evidence.json, each as pieces of JSON text."""
        for check, object_type in sorted(self.passed.segments):
            key = (check, object_type)
            head = {"check": check, "object_type": object_type}
            yield chain([json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1], ',"passed":['],
                        self.passed.items(key), ['],"failed":['], self.failed.items(key), ["]}"])

    def close(self) -> None:
        """The CSV is complete; the spools stay open until evidence.json is written."""
        self.csv.close()

    def discard(self) -> None:
        self.passed.close()
        self.failed.close()


def _object_rows(scope: Scope):
    """Every object in scope as a row for objects.csv and evidence.json (built from value tuples: one dict per
    row instead of Django's and then ours)."""
    creds = scope.credentials().order_by("pk").values_list(
        "pk", "name", "kind", "status", "owner__username", "team__name", "system__name", "store__name",
        "store__kind", "privilege_level", "last_rotated_at", "expires_at")
    for pk, name, kind, status, owner, team, system, store, store_kind, privilege, rotated, expires in \
            creds.iterator(chunk_size=5000):
        yield {"object_type": "governance.credential", "object_id": pk, "name": name, "kind": kind,
               "status": status, "owner": owner, "team": team, "system": system, "store": store,
               "store_kind": store_kind, "privilege_level": privilege, "last_rotated_at": jsonable(rotated),
               "expires_at": jsonable(expires)}  # formatted once, for both the JSON and the CSV
    workflows = scope.workflows().order_by("pk").values_list(
        "pk", "name", "kind", "status", "owner__username", "team__name", "platform").distinct()
    for pk, name, kind, status, owner, team, platform in workflows.iterator(chunk_size=5000):
        yield {"object_type": "governance.workflow", "object_id": pk, "name": name, "kind": kind,
               "status": status, "owner": owner, "team": team, "platform": platform}
    systems = scope.systems().order_by("pk").values_list("pk", "name", "lifecycle", "owner__username", "team__name")
    for pk, name, lifecycle, owner, team in systems.iterator(chunk_size=5000):
        yield {"object_type": "governance.system", "object_id": pk, "name": name, "lifecycle": lifecycle,
               "owner": owner, "team": team}


def events_in_scope(scope: Scope, period: Period, head_sequence: int):
    qs = AuditEvent.objects.filter(sequence__lte=head_sequence, **period.contains("occurred_at"))
    qs = qs.exclude(object_type=REPORT_OBJECT_TYPE) if scope.kind == ESTATE else qs.filter(scope.object_condition())
    return qs.order_by("sequence")


def _event_rows(scope: Scope, period: Period, head_sequence: int):
    """Every event in scope as a row for events.csv and evidence.json, its time formatted once for both."""
    at = EVENT_COLUMNS.index("occurred_at")
    for values in events_in_scope(scope, period, head_sequence).values_list(*EVENT_COLUMNS).iterator(chunk_size=5000):
        row = dict(zip(EVENT_COLUMNS, values, strict=True))
        row["occurred_at"] = jsonable(values[at])
        yield row


def _tee(rows, csv_writer: CsvEvidenceWriter, counter: dict[str, int], key: str):
    for row in rows:
        csv_writer.row(row)
        counter[key] = counter.get(key, 0) + 1
        yield row


def write_pack_files(*, workdir: Path, report: dict[str, Any], framework: dict[str, Any], summary: dict[str, Any],
                     controls: list[dict[str, Any]], checks: list[dict[str, Any]], results: CheckResultCollector,
                     accepted_risks: list[dict[str, Any]], sections: list, scope: Scope, period: Period,
                     head_sequence: int) -> tuple[list[AttachmentFile], dict[str, int]]:
    """Write evidence.json and the CSV tables; returns the attachments and row counts per file."""
    counts: dict[str, int] = {}
    results.close()
    counts["check-results.csv"] = results.csv.count
    with_csv = {name: CsvEvidenceWriter(workdir / name, columns) for name, columns in (
        ("controls.csv", CONTROL_COLUMNS), ("objects.csv", OBJECT_COLUMNS), ("events.csv", EVENT_COLUMNS),
        ("supporting.csv", SUPPORTING_COLUMNS))}
    out = JsonEvidenceWriter(workdir / "evidence.json")
    out.value("report", report)
    out.value("framework", framework)
    out.value("summary", summary)
    out.rows("controls", _tee(controls, with_csv["controls.csv"], counts, "controls.csv"))
    out.value("checks", checks)
    out.text_rows("check_results", results.json_rows())
    results.discard()
    out.value("accepted_risks", accepted_risks)
    supporting = {}
    for section in sections:
        rows = list(section.iter_all())
        supporting[section.key] = {"title": section.title, "total": len(rows), "rows": rows}
        for row in rows:
            with_csv["supporting.csv"].row({"section": section.key, "record": row})
    out.value("supporting", supporting)
    counts["supporting.csv"] = with_csv["supporting.csv"].count
    out.rows("objects", _tee(_object_rows(scope), with_csv["objects.csv"], counts, "objects.csv"))
    out.rows("events", _tee(_event_rows(scope, period, head_sequence), with_csv["events.csv"], counts, "events.csv"))
    out.close()
    for writer in with_csv.values():
        writer.close()
    names = ["evidence.json", "controls.csv", "check-results.csv", "objects.csv", "events.csv", "supporting.csv"]
    counts.setdefault("controls.csv", 0)
    counts.setdefault("objects.csv", 0)
    counts.setdefault("events.csv", 0)
    return [AttachmentFile(name, workdir / name, DESCRIPTIONS[name]) for name in names], counts
