"""Scanner reports: gitleaks JSON, trufflehog JSON (lines) and SARIF, from the scanners users already run.

Settings: {"path": "/srv/reports/gitleaks.json", "format": "auto" | "gitleaks" | "trufflehog" | "sarif",
"repository": "payments" (when the report does not name it)}. No credential.

What it reads: each finding's rule or detector, file, line, commit, repository and the verified flag
(trufflehog). The report carries the secret itself (gitleaks Secret/Match, trufflehog Raw, a SARIF
snippet): it is fingerprinted with the keyed HMAC in memory and dropped, so the same secret found by a
scan and by Steward's own scan is one. A SARIF result without a snippet is fingerprinted by its rule and
location (it then matches only itself).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from governance.discovery.fingerprint import fingerprint_key, secret_fingerprint
from governance.discovery.sources.base import Observed, Progress, SourceError, SourceMisconfigured, no_progress, setting
from governance.models.discovery import DiscoveredKind

FORMATS = ("auto", "gitleaks", "trufflehog", "sarif")
MAX_REPORT_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class ScannerSettings:
    path: str
    format: str = "auto"
    repository: str = ""

    @classmethod
    def from_source(cls, source) -> ScannerSettings:
        raw = dict(source.settings or {})
        fmt = setting(raw, "format", str, "auto")
        if fmt not in FORMATS:
            raise SourceMisconfigured(f"Source {source.name}: format must be one of {', '.join(FORMATS)}.")
        if not raw.get("path"):
            raise SourceMisconfigured(f"Source {source.name}: settings need the report's path.")
        return cls(path=str(raw["path"]), format=fmt, repository=setting(raw, "repository", str, ""))


@dataclass(frozen=True)
class ReportFinding:
    repository: str
    path: str
    line: int
    commit: str
    detector: str
    verified: bool | None
    value: str  # fingerprinted, then dropped

    def __repr__(self):
        return f"ReportFinding({self.repository}:{self.path}:{self.line}, {self.detector})"


def detect_format(text: str) -> str:
    head = text.lstrip()[:4000]
    if '"$schema"' in head and "sarif" in head.lower() or '"runs"' in head and '"version"' in head:
        return "sarif"
    if head.startswith("[") or head.startswith("{") and '"RuleID"' in head:
        return "gitleaks" if '"RuleID"' in head or head.startswith("[") else "trufflehog"
    return "trufflehog"


def parse_gitleaks(text: str, *, repository: str = "") -> list[ReportFinding]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(f"gitleaks report: not valid JSON (line {error.lineno}).") from None
    if not isinstance(rows, list):
        raise SourceError("gitleaks report: expected a JSON list of findings.")
    findings = []
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not row.get("File"):
            raise SourceError(f"gitleaks report: finding {index} has no File.")
        findings.append(ReportFinding(
            repository=repository or str(row.get("Repository") or ""), path=str(row["File"]),
            line=int(row.get("StartLine") or 0), commit=str(row.get("Commit") or ""),
            detector=f"gitleaks {row.get('RuleID') or row.get('Description') or 'rule'}", verified=None,
            value=str(row.get("Secret") or row.get("Match") or row.get("Fingerprint") or "")))
    return findings


def parse_trufflehog(text: str, *, repository: str = "") -> list[ReportFinding]:
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise SourceError(f"trufflehog report: line {number} is not a JSON object.") from None
        data = ((row.get("SourceMetadata") or {}).get("Data") or {})
        where = next(iter(data.values()), {}) if data else {}
        findings.append(ReportFinding(
            repository=repository or str(where.get("repository") or ""),
            path=str(where.get("file") or where.get("filename") or ""), line=int(where.get("line") or 0),
            commit=str(where.get("commit") or ""), detector=f"trufflehog {row.get('DetectorName') or 'detector'}",
            verified=bool(row.get("Verified")), value=str(row.get("RawV2") or row.get("Raw") or "")))
    return findings


def parse_sarif(text: str, *, repository: str = "") -> list[ReportFinding]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(f"SARIF report: not valid JSON (line {error.lineno}).") from None
    findings = []
    for run in doc.get("runs") or []:
        tool = (((run.get("tool") or {}).get("driver") or {}).get("name") or "SARIF")
        for result in run.get("results") or []:
            location = ((result.get("locations") or [{}])[0].get("physicalLocation") or {})
            region = location.get("region") or {}
            uri = str((location.get("artifactLocation") or {}).get("uri") or "")
            snippet = str(((region.get("snippet") or {}).get("text")) or "")
            properties = result.get("properties") or {}
            rule = str(result.get("ruleId") or "rule")
            line = int(region.get("startLine") or 0)
            findings.append(ReportFinding(
                repository=repository, path=uri, line=line,
                commit=str(properties.get("commitSha") or (result.get("partialFingerprints") or {}).get(
                    "commitSha") or ""),
                detector=f"{tool} {rule}", verified=properties.get("verified"),
                value=snippet or f"sarif-location:{rule}:{uri}:{line}"))
    return findings


PARSERS = {"gitleaks": parse_gitleaks, "trufflehog": parse_trufflehog, "sarif": parse_sarif}


class ScannerReportSource:
    def __init__(self, settings: ScannerSettings):
        self.settings = settings

    def observe(self, progress: Progress = no_progress) -> Iterator[Observed]:
        try:
            with open(self.settings.path, "rb") as handle:
                data = handle.read(MAX_REPORT_BYTES + 1)
        except OSError as error:
            raise SourceError(f"The report {self.settings.path} could not be read ({error.strerror}).") from None
        if len(data) > MAX_REPORT_BYTES:
            raise SourceError(f"The report {self.settings.path} is larger than {MAX_REPORT_BYTES} bytes.")
        text = data.decode("utf-8", "replace")
        fmt = self.settings.format if self.settings.format != "auto" else detect_format(text)
        key = fingerprint_key()
        seen: set[str] = set()
        for finding in PARSERS[fmt](text, repository=self.settings.repository):
            fingerprint = secret_fingerprint(finding.value or f"{finding.path}:{finding.line}", key=key)
            natural = f"{finding.repository}:{finding.path}:{fingerprint[:32]}"
            if natural in seen:
                continue
            seen.add(natural)
            yield Observed(
                kind=DiscoveredKind.HARD_CODED_SECRET, natural_key=natural,
                name=f"{finding.repository or 'report'}: {finding.path}:{finding.line}"[:300], fingerprint=fingerprint,
                facts={"repository": finding.repository, "path": finding.path, "line": finding.line,
                       "commit": finding.commit, "detector": finding.detector, "verified": finding.verified,
                       "found_in": f"{fmt} report"})
