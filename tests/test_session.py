"""setup(): mode, seeding, metrics log; show_source; metrics; plots."""

import json
import os

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import vclib
from vclib import metrics, viz
from vclib.session import resolve_mode


def test_setup_prints_one_line_and_seeds(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("VCLIB_DATA", str(tmp_path))
    cfg = vclib.setup(seed=7)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and f"device: {cfg.device.type}" in out[0] and "mode: quick" in out[0]
    assert str(tmp_path) in out[0]
    first = (torch.rand(3), np.random.rand())
    vclib.setup(seed=7, verbose=False)
    assert torch.equal(first[0], torch.rand(3)) and first[1] == np.random.rand()
    assert cfg.quick and cfg.data_source == "embedded" and cfg.pick(1, 2) == 1
    assert cfg.data_dir == tmp_path and torch.are_deterministic_algorithms_enabled()


def test_mode_from_environment_and_errors(monkeypatch):
    monkeypatch.setenv("VCLIB_MODE", "full")
    cfg = vclib.setup(verbose=False)
    assert cfg.mode == "full" and cfg.data_source == "auto" and cfg.pick(1, 2) == 2
    assert resolve_mode("quick") == "quick"
    with pytest.raises(ValueError, match="mode must be one of .* got 'fast'"):
        vclib.setup(mode="fast")
    monkeypatch.setenv("VCLIB_MODE", "slow")
    with pytest.raises(ValueError, match="VCLIB_MODE must be one of .* got 'slow'"):
        vclib.setup()
    with pytest.raises(ValueError, match="seed"):
        vclib.setup(mode="quick", seed=-1)


def test_log_metric_writes_metrics_file(monkeypatch, tmp_path):
    target = tmp_path / "metrics.json"
    monkeypatch.setenv("VCLIB_METRICS_FILE", str(target))
    cfg = vclib.setup(verbose=False)
    assert cfg.log_metric("accuracy", torch.tensor(0.5)) == 0.5
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    with pytest.raises(ValueError, match="name"):
        cfg.log_metric("", 1.0)


def test_show_source_prints_outside_notebooks(capsys):
    vclib.show_source(metrics.accuracy)
    assert "def accuracy" in capsys.readouterr().out
    with pytest.raises(ValueError, match="obj must be defined in vclib"):
        vclib.show_source(torch.nn.Linear)


def test_accuracy_and_confusion_matrix_match_torchmetrics():
    torchmetrics = pytest.importorskip("torchmetrics")
    logits = torch.randn(200, 7)
    targets = torch.randint(0, 7, (200,))
    expected = torchmetrics.functional.accuracy(logits, targets, task="multiclass", num_classes=7, average="micro")
    assert metrics.accuracy(logits, targets) == pytest.approx(expected.item())
    reference = torchmetrics.functional.confusion_matrix(logits, targets, task="multiclass", num_classes=7)
    assert torch.equal(metrics.confusion_matrix(logits, targets, 7), reference)


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="same length"):
        metrics.accuracy(torch.randn(4, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\]"):
        metrics.confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="outputs must have 1 or 2 dimensions"):
        metrics.accuracy(torch.randn(2, 3, 4), torch.tensor([0, 1]))


def test_plots_build_figures_and_validate():
    fig = viz.show_images(torch.rand(10, 1, 28, 28), labels=list(range(10)), ncols=4)
    assert len(fig.axes) == 12
    assert len(viz.show_images(torch.rand(3, 3, 8, 8)).axes) == 3
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "val_accuracy": 0.5, "lr": 0.1, "seconds": 1.0},
               {"epoch": 2, "train_loss": 0.5, "val_loss": 0.8, "val_accuracy": 0.7, "lr": 0.1, "seconds": 1.0}]
    assert len(viz.plot_history(history).axes) == 2
    assert len(viz.plot_confusion_matrix(torch.eye(3, dtype=torch.long) * 5).axes) == 1
    with pytest.raises(ValueError, match="1 or 3 channels"):
        viz.show_images(torch.rand(2, 2, 8, 8))
    with pytest.raises(ValueError, match="not in the history"):
        viz.plot_history(history, keys=["val_f1"])
    with pytest.raises(ValueError, match=r"matrix must have shape \(2, 2\), got \(2, 3\)"):
        viz.plot_confusion_matrix(torch.zeros(2, 3))
    plt.close("all")


def test_conv_explorer_draws_every_case():
    from vclib.basics.conv_explorer import draw_conv_cases, draw_convolution

    fig = draw_conv_cases(step=2)
    assert len(fig.axes) == 8
    _, ax = plt.subplots()
    assert draw_convolution(ax, 5, 3, stride=2, padding=1, step=8) == 3
    with pytest.raises(ValueError, match="no valid output position"):
        draw_convolution(ax, 2, 5)


def test_conv_explorer_dropdown_says_custom_after_a_slider_leaves_the_preset():
    from vclib.basics.conv_arithmetic import CONV_CASES
    from vclib.basics.conv_explorer import conv_explorer

    explorer = conv_explorer()
    controls = explorer.children[0].children
    presets, size, kernel = controls[0], controls[1], controls[2]
    name = list(CONV_CASES)[3]
    presets.value = name
    assert (size.value, kernel.value) == (CONV_CASES[name]["size"], CONV_CASES[name]["kernel_size"])
    assert presets.value == name  # applying a preset keeps its name
    kernel.value = 1 if kernel.value != 1 else 2
    assert presets.value == "custom"
    plt.close("all")


def test_attention_overlay_draws_and_validates():
    from vclib.viz.attention import draw_attention_overlay

    _, ax = plt.subplots()
    draw_attention_overlay(ax, torch.rand(3, 32, 32), torch.softmax(torch.randn(16), 0), query=5, patch_size=8)
    assert len(ax.images) == 2 and len(ax.patches) == 1
    with pytest.raises(ValueError, match="attention_row must have 16 weights"):
        draw_attention_overlay(ax, torch.rand(3, 32, 32), torch.rand(15), query=0, patch_size=8)


def test_portable_cpu_kernels_are_requested_on_x86_only(monkeypatch):
    from vclib import session

    for name in session.PORTABLE_CPU_KERNELS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(session.platform, "machine", lambda: "arm64")
    assert session.use_portable_cpu_kernels() == torch.backends.cpu.get_cpu_capability()
    assert not any(name in os.environ for name in session.PORTABLE_CPU_KERNELS)
    monkeypatch.setattr(session.platform, "machine", lambda: "x86_64")
    monkeypatch.setenv("VCLIB_PORTABLE_KERNELS", "0")
    session.use_portable_cpu_kernels()
    assert not any(name in os.environ for name in session.PORTABLE_CPU_KERNELS)
    monkeypatch.delenv("VCLIB_PORTABLE_KERNELS")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")  # a choice already made in the environment is kept
    session.use_portable_cpu_kernels()
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2" and os.environ["MKL_CBWR"] == "COMPATIBLE"
    cfg = vclib.setup(verbose=False)
    assert cfg.cpu_kernels == torch.backends.cpu.get_cpu_capability() and cfg.threads == torch.get_num_threads()
