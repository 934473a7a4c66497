"""The report kinds: what each one is called and how its HTML, metadata and attachments are built.

A builder takes only the stored parameters and the requester's label (plus a work directory for
its attachments and a progress callback), so the same inputs always build the same document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from governance.models.attestation import AttestationCampaign
from reports import catalogue
from reports.chain import chain_head_as_of
from reports.models import ReportKind
from reports.parameters import Period, canonical, scope_of
from reports.rendering import AttachmentFile, PdfMetadata

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Built:
    html: str
    metadata: PdfMetadata
    attachments: list[AttachmentFile]
    file_stem: str


def title_for(kind: str, parameters: dict[str, Any]) -> str:
    scope = scope_of(parameters)
    if kind == ReportKind.FRAMEWORK_PACK:

        framework = catalogue.framework_name(parameters["framework"])
        return (f"{framework} evidence pack, {scope.label.lower() if scope.kind == 'estate' else scope.label}, "
                f"{parameters['period_start']} to {parameters['period_end']}")
    if kind == ReportKind.ATTESTATION_CAMPAIGN:

        name = AttestationCampaign.objects.filter(pk=parameters["campaign"]).values_list("name", flat=True).first()
        return f"Attestation campaign {name or '#' + str(parameters['campaign'])}, as of {parameters['as_of'][:10]}"
    return f"Workflow inventory, {scope.label.lower() if scope.kind == 'estate' else scope.label}, as of " \
           f"{parameters['as_of'][:10]}"


def cover_context(kind: str, parameters: dict[str, Any], requester: str) -> dict[str, Any]:
    period = Period(parameters)
    scope = scope_of(parameters)
    return {
        "kind": kind,
        "parameters": parameters,
        "scope": scope,
        "period": period,
        "generated_at": period.as_of,
        "requester": requester,
        "steward_version": settings.STEWARD_VERSION,
        "chain": chain_head_as_of(period.as_of),
    }


def metadata_for(kind: str, parameters: dict[str, Any], requester: str, *, title: str, subject: str,
                 keywords: tuple[str, ...] = ()) -> PdfMetadata:
    return PdfMetadata(title=title, subject=subject, as_of=Period(parameters).as_of,
                       identifier_source=canonical(kind, parameters, requester), keywords=keywords)


def build(kind: str, parameters: dict[str, Any], *, requester: str, workdir: Path,
          progress: Progress = lambda pct: None) -> Built:
    if kind == ReportKind.FRAMEWORK_PACK:
        # cycle: each report builder imports this module's shared helpers
        from reports.framework_pack import build_framework_pack

        return build_framework_pack(parameters, requester=requester, workdir=workdir, progress=progress)
    if kind == ReportKind.INVENTORY:
        # cycle: each report builder imports this module's shared helpers
        from reports.inventory_report import build_inventory_report

        return build_inventory_report(parameters, requester=requester, workdir=workdir, progress=progress)
    if kind == ReportKind.ATTESTATION_CAMPAIGN:
        # cycle: each report builder imports this module's shared helpers
        from reports.attestation_report import build_attestation_report

        return build_attestation_report(parameters, requester=requester, workdir=workdir, progress=progress)
    raise ValueError(f"unknown report kind {kind!r}")
