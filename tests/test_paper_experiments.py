"""The shared pieces of the paper experiments: clock, results file, command line."""

from __future__ import annotations

import json
import math

import pytest

from vclib.paper_experiments import ExperimentClock, experiment_cli, write_results


def test_clock_and_results_file(tmp_path, monkeypatch) -> None:
    clock = ExperimentClock()
    sum(i * i for i in range(200_000))  # some CPU work
    stamp = clock.seconds()
    assert set(stamp) == {"seconds", "cpu_seconds"} and stamp["seconds"] >= 0 and stamp["cpu_seconds"] >= 0
    path = write_results(tmp_path, {"value": 1.5, **stamp})
    assert json.loads(path.read_text())["value"] == 1.5
    with pytest.raises(ValueError):
        write_results(tmp_path, {"value": math.nan})


def test_cli_passes_the_output_folder(tmp_path, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr("sys.argv", ["script", "--out", str(tmp_path / "here")])
    experiment_cli(seen.append, "An experiment.\nMore.", tmp_path / "default")
    monkeypatch.setattr("sys.argv", ["script"])
    experiment_cli(seen.append, "An experiment.", tmp_path / "default")
    assert seen == [tmp_path / "here", tmp_path / "default"]
