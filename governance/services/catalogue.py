"""Loading the control catalogue (frameworks, controls, checks, mapping) from its versioned data file.

The file is the source of truth: loading it again changes nothing, loading a newer one upgrades
the database to match it (controls and mappings no longer in the file are removed) and records
a new catalogue version. Identifiers are kept exactly as the frameworks write them.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from governance.audit import Actor, audit_append
from governance.checks import all_checks, thresholds
from governance.models.checks import CatalogueVersion, Check, CheckControl, Control, Framework
from governance.services.common import ensure_security_admin

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "catalogue" / "control-catalogue.yaml"
# The check entries name frameworks by a short key; this says which framework each one means.
MAPPING_KEYS = {
    "owasp_nhi_2025": "owasp_nhi_top10_2025",
    "nist_csf_2_0": "nist_csf_2_0",
    "nist_sp_800_207": "nist_sp_800_207",
    "nist_sp_800_53_r5": "nist_sp_800_53_r5",
    "cis_controls_v8": "cis_controls_v8",
    "iso_iec_27001_2022": "iso_iec_27001_2022",
    "soc2_tsc": "aicpa_soc2_tsc_2017",
}
SHORT_NAMES = {
    "owasp_nhi_top10_2025": "OWASP NHI Top 10",
    "nist_csf_2_0": "NIST CSF 2.0",
    "nist_sp_800_207": "NIST SP 800-207",
    "nist_sp_800_53_r5": "NIST SP 800-53r5",
    "cis_controls_v8": "CIS Controls v8",
    "iso_iec_27001_2022": "ISO/IEC 27001:2022",
    "aicpa_soc2_tsc_2017": "SOC 2",
}
NOT_FRAMEWORKS = {"nist_csf_1_1_to_2_0"}  # a crosswalk; its content arrives as CSF 2.0 aliases
ISO_THEMES = {
    "A.5": "Organizational controls",
    "A.6": "People controls",
    "A.7": "Physical controls",
    "A.8": "Technological controls",
}


@dataclass
class CatalogueLoad:
    version: CatalogueVersion
    changed: bool
    counts: dict[str, int]


def _control_rows(key: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    parents = {str(c["id"]): c["title"] for c in spec.get("controls", [])}
    rows = []
    for order, item in enumerate(spec.get("items", [])):
        identifier = str(item.get("ref") or item["id"])
        title = item.get("title") or item.get("label") or item.get("category_title") or ""
        if key == "nist_csf_2_0":
            category = str(item.get("category", ""))
        elif key == "cis_controls_v8":
            parent = identifier.split(".")[0]
            category = f"{parent} {parents.get(parent, '')}".strip()
        elif key == "iso_iec_27001_2022":
            category = ISO_THEMES.get(".".join(identifier.split(".")[:2]), "")
        elif "category" in item:
            category = f"{item['category']} {item.get('category_title', '')}".strip()
        else:
            category = ""
        rows.append(
            {
                "identifier": identifier,
                "title": str(title)[:400],
                "category": category[:200],
                "aliases": [str(a) for a in item.get("csf_1_1_predecessors", [])],
                "sort_order": order,
            }
        )
    return rows


def parse_catalogue(text: str) -> dict[str, Any]:
    """Validate the file and return frameworks, controls and checks as plain rows; every error at once."""
    document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml: 10x faster
    errors: list[str] = []
    frameworks, controls = {}, {}
    for order, (key, spec) in enumerate(document.get("frameworks", {}).items()):
        if key in NOT_FRAMEWORKS:
            continue
        frameworks[key] = {
            "name": spec["name"],
            "short_name": spec.get("short_name", SHORT_NAMES.get(key, ""))[:40],
            "version": str(spec.get("version", ""))[:200],
            "source": str(spec.get("source", "")),
            "sort_order": order,
        }
        controls[key] = _control_rows(key, spec)
        duplicates = [i for i, n in Counter(r["identifier"] for r in controls[key]).items() if n > 1]
        errors += [f"{key}: control {i} is listed twice" for i in duplicates]
    known = {key: {row["identifier"] for row in rows} for key, rows in controls.items()}
    registry = all_checks()
    checks = []
    for order, entry in enumerate(document.get("checks", [])):
        code = entry["key"].replace("_", "-")
        if code not in registry:
            errors.append(f"check {entry['id']} ({entry['key']}) has no implementation in governance.checks")
        mapping = []
        for field, framework_key in MAPPING_KEYS.items():
            for ref in entry.get(field) or []:
                identifier = str(ref["ref"])
                if framework_key not in known or identifier not in known[framework_key]:
                    errors.append(
                        f"check {entry['id']}: {field} {identifier} is not a control of {framework_key}"
                    )
                elif ref.get("strength") not in ("P", "S"):
                    errors.append(f"check {entry['id']}: {identifier} has strength {ref.get('strength')!r}")
                else:
                    mapping.append((framework_key, identifier, ref["strength"]))
        checks.append(
            {
                "code": code,
                "catalogue_id": entry["id"],
                "name": entry["name"],
                "sort_order": order,
                "mapping": mapping,
            }
        )
    missing = sorted(set(registry) - {c["code"] for c in checks})
    errors += [f"check {code} is implemented but not in the catalogue" for code in missing]
    if errors:
        raise ValidationError({"catalogue": errors})
    meta = document.get("meta", {})
    return {
        "frameworks": frameworks,
        "controls": controls,
        "checks": checks,
        "version": str(meta.get("generated", "unversioned")),
    }


def _upsert(
    model,
    lookup: dict[str, Any],
    values: dict[str, Any],
    counts: Counter,
    label: str,
    create_only: dict[str, Any] | None = None,
):
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        counts[f"{label}_created"] += 1
        return model.objects.create(**lookup, **values, **(create_only or {}))
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.save(update_fields=changed)
        counts[f"{label}_updated"] += 1
    return obj


def _sync_controls(frameworks, rows_by_framework, counts: Counter) -> dict[tuple[str, str], int]:
    """Create, update and remove controls in bulk; returns (framework key, identifier) -> control pk."""
    existing = {
        (c.framework_id, c.identifier): c for c in Control.objects.filter(framework__in=frameworks.values())
    }
    create, update, keep = [], [], set()
    fields = ("title", "category", "aliases", "sort_order")
    for key, rows in rows_by_framework.items():
        framework = frameworks[key]
        for row in rows:
            control = existing.get((framework.pk, row["identifier"]))
            keep.add((framework.pk, row["identifier"]))
            if control is None:
                create.append(Control(framework=framework, **row))
            elif any(getattr(control, name) != row[name] for name in fields):
                for name in fields:
                    setattr(control, name, row[name])
                update.append(control)
    stale = [c.pk for k, c in existing.items() if k not in keep]
    Control.objects.bulk_create(create, batch_size=500)
    Control.objects.bulk_update(update, list(fields), batch_size=500)
    if stale:
        Control.objects.filter(pk__in=stale).delete()
    for label, items in (
        ("controls_created", create),
        ("controls_updated", update),
        ("controls_removed", stale),
    ):
        if items:
            counts[label] += len(items)
    keys = {framework.pk: key for key, framework in frameworks.items()}
    return {
        (keys[fw], ident): pk
        for pk, fw, ident in Control.objects.filter(framework__in=frameworks.values()).values_list(
            "pk", "framework_id", "identifier"
        )
    }


def _sync_mappings(wanted: dict[int, dict[int, str]], counts: Counter) -> None:
    """Make CheckControl rows of the given checks exactly {check pk: {control pk: strength}}."""
    current = {
        (m.mapped_check_id, m.control_id): m
        for m in CheckControl.objects.filter(mapped_check__in=list(wanted))
    }
    target = {
        (check, control): strength
        for check, controls in wanted.items()
        for control, strength in controls.items()
    }
    remove = [m.pk for key, m in current.items() if key not in target]
    create = [
        CheckControl(mapped_check_id=c, control_id=k, strength=s)
        for (c, k), s in target.items()
        if (c, k) not in current
    ]
    update = []
    for key, strength in target.items():
        if key in current and current[key].strength != strength:
            current[key].strength = strength
            update.append(current[key])
    if remove:
        CheckControl.objects.filter(pk__in=remove).delete()
    CheckControl.objects.bulk_create(create, batch_size=500)
    CheckControl.objects.bulk_update(update, ["strength"], batch_size=500)
    for label, items in (
        ("mappings_created", create),
        ("mappings_updated", update),
        ("mappings_removed", remove),
    ):
        if items:
            counts[label] += len(items)


def check_texts_sync() -> None:
    """Write the current thresholds into each check's explanation and remediation, and its severity."""
    limits = thresholds()
    registry = all_checks()
    for check in Check.objects.filter(code__in=list(registry)):
        definition = registry[check.code]
        explanation, remediation = definition.texts(limits)
        values = {
            "explanation": explanation,
            "remediation": remediation,
            "severity": definition.severity,
            "subject_types": list(definition.subject_types),
        }
        changed = [name for name, value in values.items() if getattr(check, name) != value]
        if changed:
            for name in changed:
                setattr(check, name, values[name])
            check.save(update_fields=changed)


def catalogue_load(*, actor: Actor, path: Path | str | None = None) -> CatalogueLoad:
    """Load or upgrade the catalogue from path (the repository's file by default). Idempotent."""
    ensure_security_admin(actor)
    source = Path(path) if path else DEFAULT_PATH
    raw = source.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    parsed = parse_catalogue(raw.decode("utf-8"))
    counts: Counter = Counter()
    with transaction.atomic():
        frameworks = {
            key: _upsert(Framework, {"key": key}, values, counts, "frameworks")
            for key, values in parsed["frameworks"].items()
        }
        control_ids = _sync_controls(frameworks, parsed["controls"], counts)
        registry, limits = all_checks(), thresholds()
        wanted: dict[int, dict[int, str]] = {}
        for row in parsed["checks"]:
            definition = registry[row["code"]]
            explanation, remediation = definition.texts(limits)
            check = _upsert(
                Check,
                {"code": row["code"]},
                {
                    "catalogue_id": row["catalogue_id"],
                    "name": row["name"][:200],
                    "sort_order": row["sort_order"],
                },
                counts,
                "checks",
                create_only={
                    "severity": definition.severity,
                    "explanation": explanation,
                    "remediation": remediation,
                    "subject_types": list(definition.subject_types),
                },
            )
            wanted[check.pk] = {control_ids[(fw, ident)]: strength for fw, ident, strength in row["mapping"]}
        _sync_mappings(wanted, counts)
        check_texts_sync()
        latest = CatalogueVersion.objects.order_by("-loaded_at", "-pk").first()
        changed = bool(counts) or latest is None or latest.sha256 != digest
        if not changed:
            return CatalogueLoad(latest, False, {})
        totals = {
            "frameworks": len(frameworks),
            "controls": sum(len(rows) for rows in parsed["controls"].values()),
            "checks": len(parsed["checks"]),
            "mappings": sum(len(c["mapping"]) for c in parsed["checks"]),
        }
        version = CatalogueVersion.objects.create(
            version=f"{parsed['version']}+{digest[:12]}",
            sha256=digest,
            source=str(source.name),
            summary={"changes": dict(counts), "totals": totals},
        )
        audit_append(
            actor=actor,
            action="catalogue.load",
            target=version,
            summary=f"Control catalogue {version.version} loaded ({totals['controls']} controls, "
            f"{totals['mappings']} mappings)",
            changes={"changes": {"before": None, "after": dict(counts)}},
        )
    return CatalogueLoad(version, True, dict(counts))
