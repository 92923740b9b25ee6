"""The six paper discussions: run their experiments, build their PDFs, and record what each PDF was built from.

Each paper ``n`` has a Typst source ``paper_discussions/src/<name>.typ``, an experiment script
``paper_discussions/experiments/<n>_<slug>.py`` that writes ``paper_discussions/results/<n>_<slug>/``
(``results.json`` and figures), and a PDF ``paper_discussions/<name>.pdf``. ``manifest.json`` stores, per PDF,
the SHA-256 of its inputs (its source, the shared template, every file of its results folder) and of the PDF
itself, so that a test can tell a stale PDF without rebuilding it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vclib.checks import check_choice, check_positive_int
from vclib.notebooks import repository_root

AUTHOR = "Deep Learning for Visual Computing"
# A fixed creation date makes the PDF bytes depend only on the inputs (two builds are identical).
BUILD_TIMESTAMP = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class Paper:
    """One paper discussion; every path is absolute, under ``paper_discussions/``."""

    number: int
    name: str  # the PDF's file name without ".pdf"

    @property
    def folder(self) -> Path:
        return repository_root() / "paper_discussions"

    @property
    def pdf(self) -> Path:
        return self.folder / f"{self.name}.pdf"

    @property
    def source(self) -> Path:
        return self.folder / "src" / f"{self.name}.typ"

    @property
    def experiment(self) -> Path | None:
        """``experiments/<n>_<slug>.py``, or ``None`` while it is not written."""
        scripts = sorted((self.folder / "experiments").glob(f"{self.number}_*.py"))
        return scripts[0] if scripts else None

    @property
    def results_dir(self) -> Path | None:
        """``results/<n>_<slug>/``, named after the experiment script."""
        return None if self.experiment is None else self.folder / "results" / self.experiment.stem

    def missing(self) -> list[str]:
        """What this paper still lacks to be built, as repository-relative paths (empty when complete)."""
        root = repository_root()
        if self.experiment is None:
            lacking = [self.folder / "experiments" / f"{self.number}_<slug>.py"]
        else:
            lacking = [self.results_dir / "results.json"]
        lacking.append(self.source)
        return [str(p.relative_to(root)) for p in lacking if not p.exists()]


PAPERS: tuple[Paper, ...] = (
    Paper(1, "1_Comparative_study_AlexNet_ResNet"),
    Paper(2, "2_Comparative_Study_YOLO_DeepLabv3"),
    Paper(3, "3_Exploring_RNN_LSTM_Transformers"),
    Paper(4, "4_Exploring_Transformers_ObjectDetection"),
    Paper(5, "5_Exploring_GANs"),
    Paper(6, "6_Exploring_3D_DeepLearning"),
)


def paper(number: int) -> Paper:
    """The registered paper with this number (1-6)."""
    check_choice(number, "number", [p.number for p in PAPERS])
    return PAPERS[number - 1]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_files(entry: Paper) -> list[Path]:
    """The files a PDF is built from: its source, the template, and every file of its results folder."""
    files = [entry.source, entry.folder / "src" / "template.typ"]
    if entry.results_dir is not None and entry.results_dir.is_dir():
        files += sorted(p for p in entry.results_dir.rglob("*") if p.is_file())
    return files


def input_hashes(entry: Paper) -> dict[str, str]:
    """``{path relative to paper_discussions/: sha256}`` of :func:`input_files`."""
    return {p.relative_to(entry.folder).as_posix(): sha256(p) for p in input_files(entry)}


def manifest_path() -> Path:
    return repository_root() / "paper_discussions" / "manifest.json"


def read_manifest() -> dict[str, dict]:
    path = manifest_path()
    return json.loads(path.read_text()) if path.exists() else {}


def run_experiment(entry: Paper, threads: int | None = None) -> float:
    """Run the paper's experiment script in a fresh interpreter; it writes into ``entry.results_dir``.

    Args:
        entry: the paper.
        threads: CPU threads for torch and OpenMP; ``None`` reads ``VCLIB_THREADS`` (default 2).

    Returns:
        Wall-clock seconds.
    """
    if entry.experiment is None:
        raise FileNotFoundError(f"paper {entry.number} has no experiment script paper_discussions/experiments/"
                                f"{entry.number}_<slug>.py yet")
    threads = check_positive_int(int(os.environ.get("VCLIB_THREADS", 2)) if threads is None else threads, "threads")
    env = {**os.environ, "VCLIB_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run([sys.executable, str(entry.experiment), "--out", str(entry.results_dir)],
                   check=True, env=env, cwd=repository_root())
    return time.perf_counter() - start


def compile_pdf(source: Path, output: Path) -> None:
    """Compile a Typst source with root ``paper_discussions/``, metadata from the template, fixed timestamp."""
    import typst

    typst.compile(str(source), output=str(output), root=str(repository_root() / "paper_discussions"),
                  timestamp=BUILD_TIMESTAMP)


def build_pdf(entry: Paper) -> Path:
    """Compile the paper's PDF and record its input and output hashes in ``manifest.json``."""
    missing = entry.missing()
    if missing:
        raise FileNotFoundError(f"paper {entry.number} cannot be built yet, missing: {', '.join(missing)}")
    compile_pdf(entry.source, entry.pdf)
    manifest = read_manifest()  # read just before writing: other papers may have been built meanwhile
    manifest[entry.pdf.name] = {"inputs": input_hashes(entry), "pdf": sha256(entry.pdf)}
    temporary = manifest_path().with_suffix(".json.tmp")
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    temporary.replace(manifest_path())
    return entry.pdf


def count_pdf_pages(pdf: Path) -> int:
    """Pages of a PDF written by Typst (uncompressed page objects), without a PDF library."""
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", pdf.read_bytes()))


def build_papers(numbers: list[int] | None = None, experiments: bool = True) -> int:
    """``python -m vclib papers``: run experiments (optionally), build PDFs, print one line per paper.

    Returns:
        0 when every requested PDF was built, 1 otherwise (missing sources are named, not raised).
    """
    selected = PAPERS if not numbers else [paper(n) for n in numbers]
    failures = 0
    for entry in selected:
        if experiments and entry.experiment is not None:
            print(f"paper {entry.number}: running {entry.experiment.relative_to(repository_root())}", flush=True)
            try:
                print(f"paper {entry.number}: experiment took {run_experiment(entry):.0f} s", flush=True)
            except subprocess.CalledProcessError as error:
                print(f"paper {entry.number}: experiment failed with exit code {error.returncode}; not built")
                failures += 1
                continue
        missing = entry.missing()
        if missing:
            print(f"paper {entry.number}: not built, missing {', '.join(missing)}")
            failures += 1
            continue
        try:
            pdf = build_pdf(entry)
        except RuntimeError as error:  # typst reports source errors as RuntimeError
            print(f"paper {entry.number}: typst failed on {entry.source.name}:\n{error}")
            failures += 1
            continue
        print(f"paper {entry.number}: wrote {pdf.relative_to(repository_root())} ({count_pdf_pages(pdf)} pages)")
    return 1 if failures else 0
