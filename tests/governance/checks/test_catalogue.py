"""The control catalogue: loaded from its data file, exact identifiers, idempotent, upgradable."""

import pytest
import yaml
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command

from governance.audit import Actor
from governance.checks import all_checks
from governance.models import AuditEvent
from governance.models.checks import CatalogueVersion, Check, CheckControl, Control, Framework
from governance.services.catalogue import DEFAULT_PATH, MAPPING_KEYS, catalogue_load
from tests.factories_checks import load_catalogue

pytestmark = pytest.mark.django_db

DOCUMENT = yaml.load(DEFAULT_PATH.read_text(), Loader=yaml.CSafeLoader)
ENTRIES = {entry["key"].replace("_", "-"): entry for entry in DOCUMENT["checks"]}

# For each check, controls it must evidence as primary: (framework key, identifier), taken from the catalogue.
PRIMARY = {
    "owner-named": [("nist_csf_2_0", "GV.RR-02"), ("cis_controls_v8", "5.5"), ("iso_iec_27001_2022", "A.5.9")],
    "owner-active": [("owasp_nhi_top10_2025", "NHI1:2025"), ("nist_csf_2_0", "GV.RR-04"),
                     ("iso_iec_27001_2022", "A.6.5")],
    "secret-in-vault": [("owasp_nhi_top10_2025", "NHI2:2025"), ("nist_csf_2_0", "PR.AA-01"),
                        ("iso_iec_27001_2022", "A.5.17"), ("nist_sp_800_53_r5", "IA-5(7)")],
    "rotation-age": [("owasp_nhi_top10_2025", "NHI7:2025"), ("nist_sp_800_53_r5", "IA-5")],
    "cert-expiry": [("nist_sp_800_53_r5", "SC-17"), ("iso_iec_27001_2022", "A.8.24")],
    "least-privilege": [("owasp_nhi_top10_2025", "NHI5:2025"), ("nist_csf_2_0", "PR.AA-05"),
                        ("nist_sp_800_207", "ZT-T3"), ("nist_sp_800_53_r5", "AC-6(5)")],
    "attestation": [("nist_sp_800_53_r5", "AC-6(7)"), ("aicpa_soc2_tsc_2017", "CC6.2")],
    "approval-sod": [("nist_sp_800_53_r5", "AC-5"), ("iso_iec_27001_2022", "A.5.3"),
                     ("aicpa_soc2_tsc_2017", "CC8.1")],
    "kill-switch": [("nist_csf_2_0", "RS.MI-01"), ("cis_controls_v8", "17.4"), ("nist_sp_800_53_r5", "IR-8")],
    "retired-app-offboarded": [("owasp_nhi_top10_2025", "NHI1:2025"), ("nist_sp_800_53_r5", "AC-2(3)")],
    "no-reuse": [("owasp_nhi_top10_2025", "NHI9:2025"), ("nist_sp_800_53_r5", "IA-9")],
    "human-use": [("owasp_nhi_top10_2025", "NHI10:2025"), ("nist_sp_800_53_r5", "AC-2(12)")],
    "audit-trail": [("nist_sp_800_207", "ZT-T7"), ("nist_sp_800_53_r5", "AU-9(3)"),
                    ("iso_iec_27001_2022", "A.8.15")],
    "vendor-creds-reviewed": [("owasp_nhi_top10_2025", "NHI3:2025"), ("nist_csf_2_0", "GV.SC-07"),
                              ("aicpa_soc2_tsc_2017", "CC9.2")],
    # Two checks Steward adds to the shared catalogue, fed by the lifecycle connectors' evidence.
    "credential-source-resolves": [("nist_sp_800_53_r5", "CM-8"), ("iso_iec_27001_2022", "A.5.9")],
    "rotation-succeeds": [("owasp_nhi_top10_2025", "NHI7:2025"), ("nist_sp_800_53_r5", "IA-5(1)")],
    "no-privilege-drift": [("owasp_nhi_top10_2025", "NHI5:2025"), ("nist_csf_2_0", "PR.AA-05")],
    # The governance items a workflow needs before it is active (governance/services/governance_items.py).
    "approval-path": [("nist_csf_2_0", "PR.AA-05"), ("nist_sp_800_53_r5", "AC-5"), ("aicpa_soc2_tsc_2017", "CC8.1")],
    "credential-source": [("nist_csf_2_0", "ID.AM-02"), ("nist_sp_800_53_r5", "CM-8"),
                          ("iso_iec_27001_2022", "A.5.9")],
    # Discovery's checks (governance/discovery/checks.py).
    "discovery-undeclared-identity": [("owasp_nhi_top10_2025", "NHI1:2025"), ("nist_csf_2_0", "ID.AM-02"),
                                      ("nist_csf_2_0", "PR.AA-01")],
    "discovery-undeclared-workflow": [("owasp_nhi_top10_2025", "NHI1:2025"), ("nist_csf_2_0", "ID.AM-02")],
    "discovery-hard-coded-secret": [("owasp_nhi_top10_2025", "NHI2:2025"), ("nist_sp_800_53_r5", "IA-5(7)")],
    "discovery-privileged-undeclared-identity": [("owasp_nhi_top10_2025", "NHI5:2025"),
                                                 ("nist_csf_2_0", "PR.AA-05")],
    "discovery-declared-missing": [("nist_sp_800_53_r5", "CM-8"), ("iso_iec_27001_2022", "A.5.9")],
}


def _expected_mapping(code):
    entry = ENTRIES[code]
    return {(MAPPING_KEYS[field], str(ref["ref"]), ref["strength"])
            for field in MAPPING_KEYS for ref in entry.get(field) or []}


def test_load_creates_frameworks_controls_and_checks_with_exact_identifiers():
    result = load_catalogue()
    assert result.changed
    assert Framework.objects.count() == 7
    assert Check.objects.count() == len(ENTRIES) == len(all_checks())
    nhi2 = Control.objects.get(framework__key="owasp_nhi_top10_2025", identifier="NHI2:2025")
    assert nhi2.title == "Secret Leakage"
    pr_aa_01 = Control.objects.get(framework__key="nist_csf_2_0", identifier="PR.AA-01")
    assert pr_aa_01.aliases == ["PR.AC-1"] and pr_aa_01.formerly == "PR.AC-1"
    assert Control.objects.get(framework__key="nist_csf_2_0", identifier="PR.AA-05").aliases == [
        "PR.AC-1", "PR.AC-3", "PR.AC-4"]
    a517 = Control.objects.get(framework__key="iso_iec_27001_2022", identifier="A.5.17")
    assert a517.title == "Authentication information" and a517.category == "Organizational controls"
    assert Control.objects.get(framework__key="cis_controls_v8", identifier="5.5").category == "5 Account Management"
    assert not Control.objects.filter(framework__key="iso_iec_27001_2022", identifier="5.3").exists()  # a clause
    assert not Framework.objects.filter(key="nist_csf_1_1_to_2_0").exists()  # a crosswalk, not a framework
    expected = sum(len(_expected_mapping(code)) for code in ENTRIES)
    assert CheckControl.objects.count() == expected
    version = CatalogueVersion.objects.get()
    assert version.version.startswith("2026-11-29+") and len(version.sha256) == 64
    assert AuditEvent.objects.filter(action="catalogue.load").count() == 1


def test_loading_again_changes_nothing():
    load_catalogue()
    events = AuditEvent.objects.count()
    result = load_catalogue()
    assert not result.changed and result.counts == {}
    assert CatalogueVersion.objects.count() == 1
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("code", sorted(ENTRIES))
def test_each_check_maps_to_its_catalogue_controls(code):
    load_catalogue()
    check = Check.objects.get(code=code)
    assert check.catalogue_id == ENTRIES[code]["id"] and check.name == ENTRIES[code]["name"]
    mapped = set(CheckControl.objects.filter(mapped_check=check).values_list(
        "control__framework__key", "control__identifier", "strength"))
    assert mapped == _expected_mapping(code)
    for framework, identifier in PRIMARY[code]:
        assert (framework, identifier, "P") in mapped


def test_upgrade_applies_changes_and_records_a_new_version(tmp_path):
    load_catalogue()
    document = yaml.load(DEFAULT_PATH.read_text(), Loader=yaml.CSafeLoader)
    document["meta"]["generated"] = "2027-01-15"
    items = document["frameworks"]["owasp_nhi_top10_2025"]["items"]
    items[1]["title"] = "Secret Leakage (renamed)"
    entry = next(e for e in document["checks"] if e["key"] == "human_use")
    entry["soc2_tsc"] = [ref for ref in entry["soc2_tsc"] if ref["ref"] != "CC6.1"]
    entry["nist_sp_800_53_r5"][0]["strength"] = "S"
    document["frameworks"]["nist_sp_800_53_r5"]["items"] = [
        item for item in document["frameworks"]["nist_sp_800_53_r5"]["items"] if item["id"] != "PM-5"]
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = catalogue_load(actor=Actor.system(), path=path)
    assert result.changed
    # One title changed; the 12 controls listed after PM-5 moved up one place in the sort order.
    assert result.counts == {"controls_updated": 13, "controls_removed": 1, "mappings_removed": 1,
                             "mappings_updated": 1}
    assert result.version.version.startswith("2027-01-15+")
    assert CatalogueVersion.objects.count() == 2
    assert Control.objects.get(identifier="NHI2:2025").title == "Secret Leakage (renamed)"
    assert not Control.objects.filter(identifier="PM-5").exists()
    human_use = Check.objects.get(code="human-use")
    assert not human_use.mappings.filter(control__identifier="CC6.1").exists()
    assert human_use.mappings.get(control__identifier="IA-2").strength == "S"


def test_an_invalid_catalogue_is_refused_with_every_error(tmp_path):
    document = yaml.load(DEFAULT_PATH.read_text(), Loader=yaml.CSafeLoader)
    document["checks"][0]["nist_csf_2_0"].append({"ref": "PR.AC-1", "strength": "P"})  # a 1.1 id: not a control
    document["checks"][1]["owasp_nhi_2025"][0]["strength"] = "X"
    document["checks"] = [c for c in document["checks"] if c["key"] != "vendor_creds_reviewed"]  # implemented, unlisted
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ValidationError) as caught:
        catalogue_load(actor=Actor.system(), path=path)
    messages = " ".join(caught.value.messages)
    assert "PR.AC-1 is not a control of nist_csf_2_0" in messages
    assert "strength 'X'" in messages
    assert "vendor-creds-reviewed is implemented but not in the catalogue" in messages
    assert not Framework.objects.exists()


def test_only_security_admins_may_load(personas):
    with pytest.raises(PermissionDenied):
        catalogue_load(actor=Actor.for_user(personas.owner))
    assert catalogue_load(actor=Actor.for_user(personas.secadmin)).changed


def test_load_catalogue_command(capsys):
    call_command("load_catalogue")
    assert "7 frameworks" in capsys.readouterr().out
    call_command("load_catalogue")
    assert "nothing changed" in capsys.readouterr().out
