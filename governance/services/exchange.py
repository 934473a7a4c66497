"""Inventory import and export (CSV and JSON): all or nothing, idempotent, audited.

Import reads the whole file and validates every row before it writes anything, so a person sees
every mistake at once, each with its line and field. A clean file is then written in one
transaction through the inventory and people services, so each change is audited and checked
for permission exactly as in the portal; a refusal half-way rolls everything back. Re-importing
a file changes nothing: an object is written only where a row differs from what Steward holds.
Export goes through restrict(), so a person exports only what they may see.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils.text import slugify

from governance.audit import Actor
from governance.choices import PersonStatus, SystemLifecycle, WorkflowStatus
from governance.permissions import VIEW, restrict
from governance.services import exchange_schema as xs
from governance.services import inventory, people
from governance.services.exchange_schema import OBJECT_TYPES, SCHEMAS, ImportRejected, Row, RowError

__all__ = ["OBJECT_TYPES", "ImportRejected", "ImportResult", "RowError", "export_document",
           "export_inventory", "export_rows", "import_inventory"]

SECRET_MESSAGE = (
    "This looks like {kind}. Steward never stores secret values: give a reference (store and path, "
    "key id or fingerprint) instead."
)
VISIBILITY_CHECKED = ("systems", "credentials", "workflows", "bindings")
# Types whose existing objects no service can change yet (besides adding team members).
NOT_UPDATABLE = ("teams", "people", "bindings")
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
CREATE = {"systems": inventory.system_create, "secret_stores": inventory.secret_store_create,
          "credentials": inventory.credential_create, "workflows": inventory.workflow_create,
          "bindings": inventory.binding_create}
UPDATE = {"systems": ("system", inventory.system_update),
          "secret_stores": ("store", inventory.secret_store_update),
          "credentials": ("credential", inventory.credential_update),
          "workflows": ("workflow", inventory.workflow_update)}
# Retirement goes through the retire action, which records why (the update services insist on it).
RETIRE = {"systems": ("lifecycle", SystemLifecycle.RETIRED, inventory.system_retire),
          "workflows": ("status", WorkflowStatus.RETIRED, inventory.workflow_retire)}


@dataclass
class ImportResult:
    created: dict[str, int]
    updated: dict[str, int]
    unchanged: dict[str, int]

    @classmethod
    def empty(cls) -> ImportResult:
        return cls(*({name: 0 for name in OBJECT_TYPES} for _ in range(3)))


@dataclass
class _Step:
    """One valid row and what it will do: create, update the fields in changes, or nothing."""

    object_type: str
    line: int
    key: Any
    existing: models.Model | None
    values: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        return "created" if self.existing is None else "updated" if self.changes else "unchanged"


class _Directory:
    """Natural key to object for each type as the database holds it, plus the keys the file defines."""

    def __init__(self, actor: Actor):
        self.actor = actor
        self._objects: dict[str, dict[Any, models.Model]] = {}
        self._visible: dict[str, set[int]] = {}
        self.defined: dict[str, dict[Any, int]] = defaultdict(dict)

    def objects(self, object_type: str) -> dict[Any, models.Model]:
        if object_type not in self._objects:
            queryset = xs.prepared(object_type, xs.base_queryset(object_type))
            self._objects[object_type] = {xs.key_of(object_type, obj): obj for obj in queryset}
        return self._objects[object_type]

    def visible(self, object_type: str, obj: models.Model) -> bool:
        """A person sees only their own inventory; what they may not see counts as missing."""
        if self.actor.kind == "system" or object_type not in VISIBILITY_CHECKED:
            return True
        if object_type not in self._visible:
            allowed = restrict(xs.base_queryset(object_type), self.actor.user, VIEW)
            self._visible[object_type] = set(allowed.values_list("pk", flat=True))
        return obj.pk in self._visible[object_type]

    def in_database(self, object_type: str, key: Any) -> bool:
        obj = self.objects(object_type).get(key)
        return obj is not None and self.visible(object_type, obj)

    def knows(self, object_type: str, key: Any) -> bool:
        return key in self.defined[object_type] or self.in_database(object_type, key)


class _Validator:
    """Checks every row, collecting every error; returns the steps only when there are none."""

    def __init__(self, actor: Actor, rows: dict[str, list[Row]]):
        self.rows = rows
        self.directory = _Directory(actor)
        self.errors: list[RowError] = []
        self.people_in_file = {str(r.cells.get("username", "")).strip() for r in rows.get("people", [])}

    def run(self) -> list[_Step]:
        rows = [(name, row) for name in OBJECT_TYPES for row in self.rows.get(name, [])]
        steps = [step for name, row in rows if (step := self._row(name, row))]
        if self.errors:
            raise ImportRejected(self.errors)
        return steps

    def _row(self, object_type: str, row: Row) -> _Step | None:
        schema = SCHEMAS[object_type]
        found_before = len(self.errors)

        def error(name: str, message: str) -> None:
            self.errors.append(RowError(row.line, name, message))

        values: dict[str, Any] = {}
        for name, raw in row.cells.items():
            spec = schema.field(name)
            if spec is None:
                error(name, f"Unknown column for {object_type}; the columns are "
                            f"{', '.join(f.name for f in schema.fields)}.")
            elif kind := xs.secret_in(raw, name):
                error(name, SECRET_MESSAGE.format(kind=kind))
            else:
                try:
                    value = xs.parse_value(schema, spec, raw)
                except ValueError as exc:
                    error(name, str(exc))
                    continue
                if value is not xs.NOT_GIVEN:
                    values[name] = value
        bad = {e.field for e in self.errors[found_before:]}
        missing = [f.name for f in schema.key_fields if f.name not in values]
        for name in missing:
            if name not in bad:
                error(name, f"Required: it identifies the {schema.label}.")
        if missing:
            return None
        key, key_field = xs.key_of_values(object_type, values), schema.key_fields[-1].name
        if key in self.directory.defined[object_type]:
            first = self.directory.defined[object_type][key]
            error(key_field, f"{xs.describe_key(key)!r} is also on line {first}; give each once.")
            return None
        self.directory.defined[object_type][key] = row.line
        existing = self.directory.objects(object_type).get(key)
        if existing is not None and not self.directory.visible(object_type, existing):
            existing = None  # what a person may not see looks missing; creating it then clashes
        if existing is None:
            for spec in schema.fields:
                if spec.required and spec.name not in values and spec.name not in bad:
                    error(spec.name, f"Required for a new {schema.label}.")
        self._check_references(object_type, values, error)
        step = _Step(object_type, row.line, key, existing, values)
        if existing is not None:
            current = xs.current_values(object_type, existing)
            step.changes = {name: value for name, value in values.items()
                            if not xs.same_value(schema.field(name), value, current[name])}
        self._check_rules(step, error)
        return None if len(self.errors) > found_before else step

    def _check_references(self, object_type: str, values: dict[str, Any], error: Callable) -> None:
        schema = SCHEMAS[object_type]
        for spec in schema.fields:
            if not spec.ref or values.get(spec.name) is None:
                continue
            label = SCHEMAS[spec.ref].label
            for key in values[spec.name] if spec.kind == "refs" else [values[spec.name]]:
                if object_type == "teams" and key in self.people_in_file:
                    continue  # a new team's manager may be a new person further down the file
                if not self.directory.knows(spec.ref, key):
                    error(spec.name, f"No {label} {key!r} in Steward or earlier in this file.")
                elif spec.name == "owner" and self._departed(key):
                    error(spec.name, f"{key!r} has departed and cannot own anything.")
        if object_type == "bindings" and {"credential_system", "credential_identifier"} <= values.keys():
            credential = (values["credential_system"], values["credential_identifier"])
            if not self.directory.knows("credentials", credential):
                error("credential_identifier", f"No credential {credential[1]!r} on system {credential[0]!r} "
                                               "in Steward or earlier in this file.")

    def _departed(self, username: str) -> bool:
        return getattr(self.directory.objects("people").get(username), "is_departed", False)

    def _check_rules(self, step: _Step, error: Callable) -> None:
        """Rules a row must meet that the column types alone do not say."""
        values, schema = step.values, SCHEMAS[step.object_type]
        if step.object_type in NOT_UPDATABLE and step.existing is not None:
            current = xs.current_values(step.object_type, step.existing)
            for name in step.changes:
                if name == "status":
                    error(name, "Import does not depart or reinstate people; use the depart action.")
                elif name != "teams":
                    error(name, f"Import does not change an existing {schema.label}'s {name} (Steward holds "
                                f"{xs.jsonable_value(current[name])!r}); change it in Steward.")
        new = step.existing is None
        if step.object_type == "people" and new and values.get("status") == PersonStatus.DEPARTED:
            error("status", "Import adds active people only; mark a person departed with the depart action.")
        if step.object_type == "teams" and step.existing is None:
            slug = slugify(step.key)
            clash = [t for t in self.directory.objects("teams").values() if t.slug == slug]
            if clash or any(slugify(k) == slug for k in self.directory.defined["teams"] if k != step.key):
                error("name", f"The name {step.key!r} is too close to another team's name.")
            elif Group.objects.filter(name=step.key).exists():
                error("name", f"A group named {step.key!r} exists already.")
        self._check_gated(step, error)
        if step.object_type == "credentials":
            current = xs.current_values("credentials", step.existing) if step.existing else {}
            store = values.get("store", current.get("store"))
            if store and not values.get("store_path", current.get("store_path")):
                error("store_path", "Give the path of the value in the store.")


    def _check_gated(self, step: _Step, error: Callable) -> None:
        """Gated fields (state, owner, team, privilege, stamps) of an existing object change only through their
        own operations; a row may still retire it (the retire service, security admins). On a new object
        only a security admin's import sets them (inventory.creation_refusals)."""
        model = SCHEMAS[step.object_type].model
        gated = inventory.GATED_FIELDS.get(model)
        if not gated:
            return
        if step.existing is not None:
            retirement = RETIRE.get(step.object_type, ("", None, None))[:2]
            for name in step.changes:
                if name in gated and (name, step.changes[name]) != retirement:
                    error(name, inventory.gated_message(model, name))
            return
        data = dict(step.values)
        if "owner" in data:
            data["owner"] = self.directory.objects("people").get(data["owner"], data["owner"])
        for name, message in inventory.creation_refusals(actor=self.directory.actor, model=model,
                                                         data=data).items():
            error(name, message)


class _Writer:
    """Performs the steps through the services. Runs inside the import's transaction."""

    def __init__(self, actor: Actor, directory: _Directory, filename: str):
        self.actor, self.directory, self.filename = actor, directory, filename
        self.waiting_members: dict[str, list[models.Model]] = defaultdict(list)

    def _obj(self, object_type: str, key: Any) -> models.Model | None:
        return None if key is None else self.directory.objects(object_type)[key]

    def _data(self, object_type: str, values: dict[str, Any]) -> dict[str, Any]:
        """Service data: references resolved to objects; bindings name their credential."""
        data = {}
        for name, value in values.items():
            spec = SCHEMAS[object_type].field(name)
            if spec.kind == "refs":
                data[name] = [self._obj(spec.ref, key) for key in value]
            elif spec.kind == "ref":
                data[name] = self._obj(spec.ref, value)
            elif object_type != "bindings" or not name.startswith("credential_"):
                data[name] = value
        if object_type == "bindings" and "credential_system" in values:
            data["credential"] = self._obj("credentials", (values["credential_system"],
                                                           values["credential_identifier"]))
        return data

    def apply(self, step: _Step) -> None:
        if step.outcome == "unchanged":
            return
        name = step.object_type
        if name == "teams":
            self._team(step)
        elif name == "people":
            self._person(step)
        else:
            data = self._data(name, step.values if step.existing is None else step.changes)
            status_field, retired, retire_service = RETIRE.get(name, ("", None, None))
            retire = retired is not None and data.get(status_field) == retired
            if retire:
                del data[status_field]
            obj = step.existing
            if obj is None:
                obj = self.directory.objects(name)[step.key] = CREATE[name](actor=self.actor, data=data)
            elif data:
                obj = UPDATE[name][1](actor=self.actor, data=data, **{UPDATE[name][0]: obj})
            if retire:
                reason = f"Marked retired in the inventory import {self.filename}"
                retire_service(actor=self.actor, reason=reason, **{UPDATE[name][0]: obj})

    def _team(self, step: _Step) -> None:
        manager_name = step.values.get("manager")
        if manager_name is not None and manager_name not in self.directory.objects("people"):
            return  # its manager is a new person: created after the people (create_waiting_team)
        self._create_team(step)

    def _create_team(self, step: _Step, members: Sequence[models.Model] = ()) -> None:
        manager = self._obj("people", step.values.get("manager"))
        team = people.team_create(actor=self.actor, name=step.key, manager=manager,
                                  description=step.values.get("description", ""), members=members)
        self.directory.objects("teams")[step.key] = team

    def _person(self, step: _Step) -> None:
        teams = self.directory.objects("teams")
        person = step.existing
        wanted = step.values.get("teams", []) if person is None else step.changes.get("teams", [])
        if person is None:
            fields = {n: step.values.get(n, "") for n in ("first_name", "last_name", "email", "job_title")}
            person = people.person_create(actor=self.actor, username=step.key, **fields,
                                          teams=[teams[n] for n in wanted if n in teams])
            self.directory.objects("people")[step.key] = person
            wanted = [n for n in wanted if n not in teams]
        held = set(xs.current_values("people", step.existing)["teams"]) if step.existing else set()
        for name in wanted:
            if name in held:
                continue
            if name in teams:
                people.team_member_add(actor=self.actor, team=teams[name], person=person)
            else:
                self.waiting_members[name].append(person)

    def waiting_teams(self, steps: list[_Step]) -> list[_Step]:
        """New teams whose manager is a new person: created once the people exist."""
        made = self.directory.objects("teams")
        return [s for s in steps if s.object_type == "teams" and s.existing is None and s.key not in made]

    def create_waiting_team(self, step: _Step) -> None:
        self._create_team(step, members=self.waiting_members[step.key])


def _rejection(exc: Exception, line: int) -> ImportRejected:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return ImportRejected(RowError(line, "" if name == NON_FIELD_ERRORS else name, " ".join(messages))
                              for name, messages in exc.message_dict.items())
    if isinstance(exc, ValidationError):
        return ImportRejected([RowError(line, "", " ".join(exc.messages))])
    if isinstance(exc, PermissionDenied):
        return ImportRejected([RowError(line, "", str(exc) or "You may not make this change.")])
    return ImportRejected([RowError(line, "", "The database refused this row: it clashes with stored data.")])


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def import_inventory(
    *, actor: Actor, content: bytes, filename: str, object_type: str | None = None, dry_run: bool = False
) -> ImportResult:
    """Import a CSV or JSON inventory file; raises ImportRejected, having written nothing, on any error."""
    fmt = xs.file_format(filename)
    object_type = object_type or xs.guess_type(filename)
    if object_type is not None and object_type not in OBJECT_TYPES:
        raise ImportRejected([RowError(1, "file", f"Unknown object type {object_type!r}; give one of "
                                                  f"{', '.join(OBJECT_TYPES)}.")])
    text, errors = xs.decode(content), []
    if fmt == "csv":
        if object_type is None:
            raise ImportRejected([RowError(1, "file", "Say which object type this CSV file holds (--type).")])
        rows = {object_type: xs.read_csv(text, object_type, errors)}
    else:
        rows = xs.read_json(text, object_type, errors)
    validator = _Validator(actor, rows)
    try:
        steps = validator.run()
    except ImportRejected as exc:
        raise ImportRejected([*errors, *exc.errors]) from None
    if errors:
        raise ImportRejected(errors)
    result = ImportResult.empty()
    for step in steps:
        getattr(result, step.outcome)[step.object_type] += 1
    writer, current = _Writer(actor, validator.directory, filename), None
    try:
        with transaction.atomic():
            directory_types = ("teams", "people")
            for current in [s for s in steps if s.object_type in directory_types]:
                writer.apply(current)
            for current in writer.waiting_teams(steps):
                writer.create_waiting_team(current)
            for current in [s for s in steps if s.object_type not in directory_types]:
                writer.apply(current)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    except (ValidationError, PermissionDenied, IntegrityError) as exc:
        raise _rejection(exc, current.line if current else 1) from exc
    return result


def export_rows(object_type: str, queryset: models.QuerySet) -> list[dict[str, Any]]:
    """Objects in the documented schema, references as natural keys, ready for JSON."""
    return [{name: xs.jsonable_value(value) for name, value in xs.current_values(object_type, obj).items()}
            for obj in xs.prepared(object_type, queryset)]


def export_document(
    *, object_type: str, fmt: str, queryset_for: Callable[[str], models.QuerySet]
) -> tuple[str, str]:
    """Render an export; object_type "all" (JSON only) gives one document that import accepts back."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; give csv or json.")
    if object_type != "all" and object_type not in OBJECT_TYPES:
        raise ValueError(f"Unknown object type {object_type!r}; give all or one of {', '.join(OBJECT_TYPES)}")
    if fmt == "json":
        document = ({name: export_rows(name, queryset_for(name)) for name in OBJECT_TYPES}
                    if object_type == "all" else export_rows(object_type, queryset_for(object_type)))
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n", FORMATS[fmt]
    if object_type == "all":
        raise ValueError("A CSV file holds one object type; give --type, or use JSON for all types.")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = [f.name for f in SCHEMAS[object_type].fields]
    writer.writerow(columns)
    for row in export_rows(object_type, queryset_for(object_type)):
        writer.writerow([xs.csv_cell(row[name]) for name in columns])
    return buffer.getvalue(), FORMATS[fmt]


def export_inventory(*, user, object_type: str, fmt: str) -> tuple[str, str]:
    """Export what user may see, as (text, content type)."""
    return export_document(object_type=object_type, fmt=fmt,
                           queryset_for=lambda name: restrict(xs.base_queryset(name), user, VIEW))
