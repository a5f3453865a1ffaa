"""Software bill of materials (CycloneDX) of the firmware image.

``firmware_bom(version, board)`` describes what a deployed slot runs: the
``cryo`` firmware itself, the MicroPython runtime and micropython-lib at the
commits the Makefile pins (``MP_PIN``/``MP_LIB_PIN``), built with the
``cyclonedx-python-lib`` library (``cyclonedx-bom``). Deterministic (serial
number and timestamp derived from version and board), so an unchanged
release yields the same bytes: ``cryo flash`` puts it into the slot as
``sbom.cdx.json``, listed (hashed, signed) in the release manifest. The
file hashes themselves are in the manifest. The host tools' SBOM comes from
``cyclonedx-py environment`` (``make sbom``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import re
import sys
import uuid
from pathlib import Path

from host_tools import ROOT, mpylib

SLOT_NAME = "sbom.cdx.json"


def _pins() -> dict:
    text = (ROOT / "Makefile").read_text()
    out = {}
    for name in ("MP_PIN", "MP_LIB_PIN"):
        m = re.search(rf"^{name}\s*:=\s*([0-9a-f]{{40}})", text, re.M)
        if not m:
            raise RuntimeError(f"Makefile has no {name} commit")
        out[name] = m.group(1)
    return out


def firmware_bom(version: str, board: str) -> bytes:
    from cyclonedx.model import ExternalReference, ExternalReferenceType, XsUri
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import DisjunctiveLicense
    from cyclonedx.output.json import JsonV1Dot5
    from packageurl import PackageURL

    pins = _pins()
    fw = Component(
        name="cryo-firmware",
        version=version,
        type=ComponentType.FIRMWARE,
        bom_ref=f"cryo-firmware@{version}",
        description=f"cryotherapy controller app, board {board}",
    )

    def upstream(name, repo, commit, what):
        return Component(
            name=name,
            version=commit,
            type=ComponentType.FRAMEWORK if name == "micropython" else ComponentType.LIBRARY,
            bom_ref=f"{name}@{commit[:12]}",
            purl=PackageURL("github", "micropython", repo, commit),
            licenses=[DisjunctiveLicense(id="MIT")],
            description=what,
            external_references=[
                ExternalReference(
                    type=ExternalReferenceType.VCS,
                    url=XsUri(f"https://github.com/micropython/{repo}"),
                )
            ],
        )

    mp = upstream("micropython", "micropython", pins["MP_PIN"], "runtime the app runs on")
    lib = upstream(
        "micropython-lib",
        "micropython-lib",
        pins["MP_LIB_PIN"],
        "frozen on boards: " + ", ".join(mpylib.REQUIRES),
    )
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"cryo-firmware/{version}/{board}"))
    bom.metadata.component = fw
    bom.metadata.timestamp = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
    bom.components.add(mp)
    bom.components.add(lib)
    bom.register_dependency(fw, [mp, lib])
    return JsonV1Dot5(bom).output_as_string(indent=1).encode() + b"\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="write the firmware image's CycloneDX SBOM")
    p.add_argument("--board", default="sim")
    p.add_argument("-o", "--output", type=Path, required=True)
    a = p.parse_args(argv)
    init = (ROOT / "firmware" / "cryo" / "__init__.py").read_text()
    version = re.search(r'VERSION\s*=\s*"([^"]+)"', init).group(1)
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_bytes(firmware_bom(version, a.board))
    print(f"wrote {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
