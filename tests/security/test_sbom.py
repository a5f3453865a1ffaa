"""The CycloneDX SBOMs: the firmware's (shipped in every slot, listed in
the signed manifest) and the host tools' (`make sbom`)."""

import json
import re
import subprocess
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from host_tools import ROOT, build, sbom


def test_firmware_sbom_is_valid_deterministic_and_names_the_pinned_runtime():
    a = sbom.firmware_bom("0.1.0", "rp2040")
    assert a == sbom.firmware_bom("0.1.0", "rp2040")  # an unchanged release: same bytes
    assert a != sbom.firmware_bom("0.2.0", "rp2040")
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(a.decode()) is None
    doc = json.loads(a)
    assert doc["metadata"]["component"] == {
        "bom-ref": "cryo-firmware@0.1.0",
        "description": "cryotherapy controller app, board rp2040",
        "name": "cryo-firmware",
        "type": "firmware",
        "version": "0.1.0",
    }
    pins = dict(
        re.findall(r"^(MP_PIN|MP_LIB_PIN)\s*:=\s*(\w+)", (ROOT / "Makefile").read_text(), re.M)
    )
    versions = {c["name"]: c["version"] for c in doc["components"]}
    assert versions == {"micropython": pins["MP_PIN"], "micropython-lib": pins["MP_LIB_PIN"]}


def test_sbom_ships_in_the_slot_and_is_covered_by_the_manifest():
    b = build.build("sim")
    assert b["slot"][sbom.SLOT_NAME] == sbom.firmware_bom(b["meta"]["version"], "sim")
    files = build.manifest_files(b["slot"])
    assert sbom.SLOT_NAME in files  # its SHA-256 is in the manifest the release key signs


def test_make_sbom_writes_both(tmp_path):
    out = tmp_path / "sbom"
    r = subprocess.run(
        ["make", "-s", "sbom", f"SBOM_DIR={out}", f"PYTHON={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    host = json.loads((out / "host-tools.cdx.json").read_text())
    names = {c["name"]: c.get("version") for c in host["components"]}
    assert names["mpremote"] == "1.29.0" and names["cryptography"] == "50.0.2"
    for board in ("sim", "rp2040", "rp2350", "esp32s3", "stm32f4"):
        fw = json.loads((out / f"firmware-{board}.cdx.json").read_text())
        assert fw["metadata"]["component"]["description"].endswith("board " + board)
