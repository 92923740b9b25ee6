"""What every paper-discussion experiment script shares: its clock, its results file and its command line."""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ExperimentClock:
    """Wall and CPU time since construction; CPU time includes finished child processes (data workers)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def seconds(self) -> dict[str, float]:
        """``{"seconds": wall, "cpu_seconds": cpu}``, rounded to 0.1 s."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        return {"seconds": round(time.perf_counter() - self.wall, 1),
                "cpu_seconds": round(time.process_time() - self.cpu + children, 1)}


def write_results(out: Path, results: dict[str, Any]) -> Path:
    """Write ``results`` to ``out / "results.json"`` (indented; NaN and infinity are refused, as JSON has
    neither) and print where."""
    path = Path(out) / "results.json"
    path.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    seconds = results.get("seconds")
    print(f"wrote {path}" + (f" in {seconds:.0f} s" if isinstance(seconds, int | float) else ""), flush=True)
    return path


def experiment_cli(main: Callable[[Path], Any], description: str, default_out: Path) -> None:
    """``python <script> [--out DIR]``: call ``main(out)``."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out, help=f"results folder (default {default_out})")
    main(parser.parse_args().out)
