"""Dry-run the Colab install cell against Colab's pins and check it leaves Colab's own packages alone.

Resolves ``pip install .`` (the runtime set, as the Colab cell installs it) in a scratch virtual environment
with ``pip install --dry-run --report`` and the newest ``colab/constraints-*.txt``. A protected package that the
report would install must be pinned in the constraints file at the pinned version (Colab already has it, so
pip leaves it alone there); a protected package that is not pinned must not be pulled in at all, except torch
and torchvision, which vclib requires unpinned (``>=``) so Colab's preinstalled build satisfies them.
Prints one SKIP line and exits 0 when the package index cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTECTED = ("torch", "torchvision", "ipykernel", "ipython", "jupyter-client", "jupyter-core", "tornado",
             "jupyter-server", "notebook", "jupyterlab", "nbclient", "nbformat", "nbval")
PREINSTALLED_UNPINNED = ("torch", "torchvision")


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def index_reachable(url: str = "https://pypi.org/simple/pip/") -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10):
            return True
    except OSError:
        return False


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_normalise(name)] = version.strip()
    return pins


def check_report(report: dict, pins: dict[str, str]) -> list[str]:
    """Return one message per protected package that the install would change."""
    problems = []
    for item in report["install"]:
        name, version = _normalise(item["metadata"]["name"]), item["metadata"]["version"]
        if name not in PROTECTED or name in PREINSTALLED_UNPINNED:
            continue
        if name not in pins:
            problems.append(f"{name} {version} would be installed; Colab's own copy must stay")
        elif version != pins[name]:
            problems.append(f"{name} would move from Colab's {pins[name]} to {version}")
    return problems


def main() -> int:
    if not index_reachable():
        print("check-colab: SKIP, the package index cannot be reached")
        return 0
    constraints = sorted((ROOT / "colab").glob("constraints-*.txt"))[-1]
    with tempfile.TemporaryDirectory() as tmp:
        venv.create(tmp, with_pip=True)
        report_path = Path(tmp) / "report.json"
        command = [str(Path(tmp) / "bin" / "python"), "-m", "pip", "install", "--quiet", "--dry-run",
                   "--ignore-installed", "--report", str(report_path), "-c", str(constraints), str(ROOT)]
        subprocess.run(command, check=True)
        report = json.loads(report_path.read_text())
    print(f"check-colab: {constraints.name}; pip would install on Colab:")
    for item in sorted(report["install"], key=lambda i: _normalise(i["metadata"]["name"])):
        print(f"  {item['metadata']['name']}=={item['metadata']['version']}")
    problems = check_report(report, read_pins(constraints))
    for problem in problems:
        print(f"check-colab: FAIL {problem}")
    if not problems:
        print("check-colab: OK, no protected Colab package would be changed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
