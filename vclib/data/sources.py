"""Choosing between real and embedded data: ``source="auto" | "torchvision" | "embedded"``."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from vclib.checks import check_choice


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """``data_dir`` if given, else the session default (``VCLIB_DATA`` or ``~/.cache/vclib/data``)."""
    from vclib.session import default_data_dir

    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def url_reachable(url: str, timeout: float = 3.0) -> bool:
    """True if a HEAD request to ``url`` answers within ``timeout`` seconds.

    ``VCLIB_OFFLINE=1`` skips the request and answers False.
    """
    if os.environ.get("VCLIB_OFFLINE") == "1":
        return False
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - fixed https URLs
            return True
    except (OSError, ValueError):
        return False


def check_source(source: str, choices: tuple[str, ...]) -> None:
    """Reject unknown data sources, naming the argument."""
    check_choice(source, "source", choices)


_ANNOUNCED: set[str] = set()  # lines already printed in this session (vclib.setup() clears it)


def announce(dataset: str, source: str, detail: str) -> None:
    """The one line that says which data a loader picked, printed once per session (the train and test
    splits of one dataset share it)."""
    line = f"{dataset}: using {source} data ({detail})"
    if line not in _ANNOUNCED:
        _ANNOUNCED.add(line)
        print(line)


def reset_announcements() -> None:
    """Forget the printed lines, so that the next loader announces its data again."""
    _ANNOUNCED.clear()


def safe_extract(archive: str | Path, destination: str | Path) -> None:
    """Extract a tar archive, refusing members that would land outside ``destination``.

    Uses tarfile's ``"data"`` filter (no absolute paths, no ``..``, no links out of the tree, no device
    files) where Python has it, and an equivalent path check otherwise.
    """
    import tarfile

    archive, destination = Path(archive), Path(destination).resolve()
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(destination, filter="data")
                return
            for member in tar.getmembers():
                target = (destination / member.name).resolve()
                if destination not in target.parents and target != destination:
                    raise ValueError(f"archive {archive} has a member outside the destination: {member.name!r}")
                if member.issym() or member.islnk() or member.isdev():
                    raise ValueError(f"archive {archive} has a link or device member: {member.name!r}")
            tar.extractall(destination)  # noqa: S202 - members checked above
    except tarfile.FilterError as error:
        raise ValueError(f"archive {archive} has an unsafe member: {error}") from error
    except tarfile.TarError as error:
        raise ValueError(f"archive {archive} is corrupt: {error}") from error
