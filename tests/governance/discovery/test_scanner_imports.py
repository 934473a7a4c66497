"""gitleaks JSON, trufflehog JSON lines and SARIF reports: findings with their flags, fingerprinted, no values."""

from pathlib import Path

import pytest

from governance.discovery.fingerprint import secret_fingerprint
from governance.discovery.sources.base import SourceError
from governance.discovery.sources.scanners import ScannerReportSource, ScannerSettings, detect_format
from governance.models.discovery import DiscoveredKind, DiscoverySource

FIXTURES = Path(__file__).parent / "fixtures"


def read(path: Path, **settings):
    model = DiscoverySource(name="report", kind="scanner_import", settings={"path": str(path), **settings})
    return list(ScannerReportSource(ScannerSettings.from_source(model)).observe())


@pytest.mark.parametrize(("name", "expected"), [("gitleaks.json", "gitleaks"), ("trufflehog.jsonl", "trufflehog"),
                                                ("results.sarif", "sarif")])
def test_format_is_recognised(name, expected):
    assert detect_format((FIXTURES / name).read_text()) == expected


def test_gitleaks_findings():
    items = read(FIXTURES / "gitleaks.json")
    assert [i.facts["path"] for i in items] == ["config/app.env", "ops/notify.sh"]
    first = items[0]
    assert first.kind == DiscoveredKind.HARD_CODED_SECRET
    assert first.fingerprint == secret_fingerprint("FAKE-gitleaks-secret-0001")
    assert first.facts["repository"] == "payments" and first.facts["line"] == 12
    assert first.facts["detector"] == "gitleaks generic-api-key" and first.facts["verified"] is None
    assert "FAKE-gitleaks" not in repr(items)


def test_trufflehog_findings_keep_the_verified_flag():
    items = read(FIXTURES / "trufflehog.jsonl", repository="")
    verified = {i.facts["path"]: i.facts["verified"] for i in items}
    assert verified == {"deploy/.env": True, "/srv/app/settings.py": False}
    assert items[0].facts["commit"] == "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
    assert "FAKE-trufflehog" not in repr(items)


def test_sarif_results_with_and_without_a_snippet():
    items = read(FIXTURES / "results.sarif", repository="payments")
    by_path = {i.facts["path"]: i for i in items}
    assert by_path[".github/workflows/nightly.yml"].fingerprint == secret_fingerprint("FAKE-sarif-secret-0001")
    assert by_path[".github/workflows/nightly.yml"].facts["commit"].startswith("c0ffee")
    assert by_path["keys/id_rsa"].facts["detector"] == "gitleaks private-key"


def test_the_same_secret_from_a_report_and_from_a_scan_has_one_fingerprint():
    [item, *_] = read(FIXTURES / "gitleaks.json")
    assert item.fingerprint == secret_fingerprint("  'FAKE-gitleaks-secret-0001' ")


def test_broken_report_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"File": "a"}, oops]')
    with pytest.raises(SourceError, match="not valid JSON"):
        read(bad, format="gitleaks")
    with pytest.raises(SourceError, match="could not be read"):
        read(tmp_path / "absent.json")
    lines = tmp_path / "bad.jsonl"
    lines.write_text('{"DetectorName": "x"}\nnot json\n')
    with pytest.raises(SourceError, match="line 2"):
        read(lines, format="trufflehog")
