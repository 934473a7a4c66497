"""Read access to the control catalogue (governance.models.checks) for the reports.

Kept in one small module so that the report code names the catalogue's interface in one place:
Framework(key, name, version), Control(framework, identifier, title, category, aliases),
Check(code, name, severity), CheckControl(mapped_check, control, strength), CatalogueVersion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from governance.models import checks


def _models():

    return checks


def framework_keys() -> list[str]:
    return list(_models().Framework.objects.order_by("sort_order", "key").values_list("key", flat=True))


def frameworks() -> list:
    return list(_models().Framework.objects.order_by("sort_order", "key"))


def framework_name(key: str) -> str:
    framework = _models().Framework.objects.filter(key=key).only("name").first()
    return framework.name if framework else key


def catalogue_version() -> dict:
    version = _models().CatalogueVersion.objects.order_by("-loaded_at", "-pk").first()
    if version is None:
        return {"version": "not loaded", "sha256": "", "source": ""}
    return {"version": version.version, "sha256": version.sha256, "source": version.source}


@dataclass
class MappedCheck:
    code: str
    name: str
    severity: str
    strength: str
    catalogue_id: str


@dataclass
class CatalogueControl:
    identifier: str
    title: str
    category: str
    aliases: list[str]
    checks: list[MappedCheck] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "control-" + "".join(c if c.isalnum() else "-" for c in self.identifier)


def framework_controls(key: str) -> tuple[object, list[CatalogueControl]]:
    """The framework and its controls in catalogue order, each with the checks that evidence it."""
    m = _models()
    framework = m.Framework.objects.get(key=key)
    controls = {
        c.pk: CatalogueControl(c.identifier, c.title, c.category, list(c.aliases or []))
        for c in m.Control.objects.filter(framework=framework).order_by("sort_order", "identifier")
    }
    mappings = (
        m.CheckControl.objects.filter(control__framework=framework)
        .select_related("mapped_check")
        .order_by("control__sort_order", "mapped_check__sort_order", "mapped_check__code")
    )
    for mapping in mappings:
        check = mapping.mapped_check
        controls[mapping.control_id].checks.append(
            MappedCheck(check.code, check.name, check.severity, mapping.strength, check.catalogue_id)
        )
    return framework, list(controls.values())
