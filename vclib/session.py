"""Session set-up shared by every notebook: seeding, device, quick/full mode, Colab, plots, metrics.

``setup()`` is the first call in each notebook. It returns a :class:`Config` that the rest of the
notebook reads (device, mode, data directory) and writes to (``log_metric``).
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

MODES = ("quick", "full")
DEFAULT_THREADS = 2
# CPU kernels that most x86 machines share (laptops rarely have AVX-512; cloud CPUs usually do). torch,
# oneDNN and MKL pick vector code by CPU, and each kind sums in its own order, so without these the same
# seed gives slightly different weights on different machines. Set before the first kernel runs.
PORTABLE_CPU_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
T = TypeVar("T")


@dataclass
class Config:
    """What a notebook needs to know about the session it runs in.

    Attributes:
        device: where models and tensors go (cuda, then mps, then cpu).
        cpu_kernels: the CPU kernel level torch uses (``"AVX2"``, ``"AVX512"``, ...); results are
            bitwise repeatable only between machines with the same level and thread count.
        mode: ``"quick"`` (laptop CPU, embedded data, minutes) or ``"full"`` (GPU, real datasets).
        seed: the seed every generator was set to.
        data_dir: where real datasets are looked for and downloaded to.
        is_colab: whether the notebook runs on Google Colab.
        metrics: headline numbers logged with :meth:`log_metric`.
    """

    device: torch.device
    mode: str
    seed: int
    data_dir: Path
    is_colab: bool = False
    cpu_kernels: str = ""
    threads: int = DEFAULT_THREADS
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def quick(self) -> bool:
        """True in quick mode."""
        return self.mode == "quick"

    @property
    def data_source(self) -> str:
        """The data source notebooks pass to loaders: embedded data in quick mode, real data in full mode."""
        return "embedded" if self.quick else "auto"

    def pick(self, quick: T, full: T) -> T:
        """Return ``quick`` in quick mode and ``full`` in full mode (epochs, subset sizes, widths...)."""
        return quick if self.quick else full

    def log_metric(self, name: str, value: float) -> float:
        """Record a headline number; ``python -m vclib run`` collects them into ``build/report.json``.

        The value is returned so that a cell can log and use it in one expression.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        value = float(value)
        self.metrics[name] = value
        metrics_file = os.environ.get("VCLIB_METRICS_FILE")
        if metrics_file:
            Path(metrics_file).write_text(json.dumps(self.metrics, indent=2))
        return value


def resolve_mode(mode: str | None) -> str:
    """The mode from the argument, else ``VCLIB_MODE``, else ``"quick"``; anything else is an error."""
    chosen = mode if mode is not None else os.environ.get("VCLIB_MODE", "quick")
    if chosen not in MODES:
        source = "mode" if mode is not None else "VCLIB_MODE"
        raise ValueError(f"{source} must be one of {MODES}, got {chosen!r}")
    return chosen


def pick_device() -> torch.device:
    """cuda if available, then Apple's mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) and ask torch for deterministic algorithms."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def use_portable_cpu_kernels() -> str:
    """Ask torch, oneDNN and MKL for AVX2 kernels on x86 CPUs (unless the environment already chose) and
    return the torch kernel level in use, e.g. ``"AVX2"``.

    This only takes effect if no torch CPU kernel ran earlier in the process (``setup()`` is the first
    call of every notebook). Set ``VCLIB_PORTABLE_KERNELS=0`` to keep the fastest kernels of the machine.
    """
    if os.environ.get("VCLIB_PORTABLE_KERNELS", "1") != "0" and platform.machine().lower() in ("x86_64", "amd64"):
        for name, value in PORTABLE_CPU_KERNELS.items():
            os.environ.setdefault(name, value)
    return torch.backends.cpu.get_cpu_capability()


def default_data_dir() -> Path:
    """``VCLIB_DATA`` if set, else ``/content/data`` on Colab, else ``~/.cache/vclib/data``."""
    if "VCLIB_DATA" in os.environ:
        return Path(os.environ["VCLIB_DATA"]).expanduser()
    if in_colab():
        return Path("/content/data")
    return Path.home() / ".cache" / "vclib" / "data"


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def progress_enabled() -> bool:
    """Progress bars are on unless ``VCLIB_PROGRESS=0`` (set by headless runs and nbval)."""
    return os.environ.get("VCLIB_PROGRESS", "1") != "0"


def _configure_colab() -> None:
    from google.colab import output  # type: ignore[import-not-found]

    output.enable_custom_widget_manager()
    import plotly.io as pio

    pio.renderers.default = "colab"


def _configure_plots() -> None:
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.figsize": (6.0, 4.0),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.cmap": "gray",
            "font.size": 10,
            "axes.titlesize": 12,
            "axes.labelsize": 11,
            "figure.titlesize": 13,
        }
    )


def setup(mode: str | None = None, seed: int = 0, threads: int | None = None, verbose: bool = True) -> Config:
    """Prepare a notebook session and return its :class:`Config`.

    Args:
        mode: ``"quick"`` or ``"full"``; ``None`` reads ``VCLIB_MODE`` (default ``"quick"``).
        seed: seed for python, numpy and torch.
        threads: CPU threads for torch; ``None`` reads ``VCLIB_THREADS`` (default 2), so timings and
            results do not depend on how many cores a machine happens to have (the thread count changes
            how sums are split, and so the last bits of the results).

    For repeatable runs it also seeds every generator, asks for deterministic algorithms and, on x86,
    for the AVX2 kernels that most machines share (see :func:`use_portable_cpu_kernels`).
        verbose: print the one-line summary.
    """
    chosen_mode = resolve_mode(mode)
    cpu_kernels = use_portable_cpu_kernels()  # before any kernel runs
    if threads is None:
        threads = int(os.environ.get("VCLIB_THREADS", DEFAULT_THREADS))
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    torch.set_num_threads(threads)
    seed_everything(seed)
    from vclib.data.sources import reset_announcements

    reset_announcements()  # each session says once which data it uses
    colab = in_colab()
    if colab:
        _configure_colab()
    _configure_plots()
    cfg = Config(device=pick_device(), mode=chosen_mode, seed=seed, data_dir=default_data_dir(), is_colab=colab,
                 cpu_kernels=cpu_kernels, threads=threads)
    if verbose:
        print(f"vclib {_version()} | device: {cfg.device.type} | mode: {cfg.mode} | "
              f"cpu: {cfg.cpu_kernels}, {cfg.threads} threads | data: {cfg.data_dir}")
    return cfg


def _version() -> str:
    from vclib import __version__

    return __version__
