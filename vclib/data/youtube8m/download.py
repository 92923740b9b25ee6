"""Downloading real YouTube-8M video-level shards, resumable and checked against the published MD5 sums."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import string
import urllib.error
import urllib.request
from pathlib import Path

from vclib.checks import check_choice, check_positive_int
from vclib.data.sources import resolve_data_dir
from vclib.data.youtube8m.records import SPLITS

# ---------------------------------------------------------------------------------------------------
# Real shards: the public download layout
#
# http://data.yt8m.org/2/download_plans/video_{split}.json lists a split's shards with their MD5 sums,
# as {"files": {"trainXY.tfrecord": "<md5>", ...}}; each shard is served from a mirror at
# http://{mirror}.data.yt8m.org/2/video/{split}/trainXY.tfrecord. XY is two characters of a-z, A-Z, 0-9
# (62 * 62 = 3,844 shards per split); shard XY is saved as {split}NNNN.tfrecord with NNNN = its index.

PLAN_URL = "http://data.yt8m.org/2/download_plans/video_{split}.json"
SHARD_URL = "http://{mirror}.data.yt8m.org/2/video/{split}/{name}"
MIRRORS = ("us", "eu", "asia")
SHARD_ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits


def shard_index(name: str) -> int:
    """The index of a remote shard name: ``"trainaa.tfrecord"`` -> 0, ``"train99.tfrecord"`` -> 3843."""
    stem = name.removesuffix(".tfrecord")
    first, second = stem[-2:-1], stem[-1:]
    if first not in SHARD_ALPHABET or second not in SHARD_ALPHABET or len(stem) < 3:
        raise ValueError(f"name must end in two characters of a-z, A-Z, 0-9 before .tfrecord, got {name!r}")
    return SHARD_ALPHABET.index(first) * len(SHARD_ALPHABET) + SHARD_ALPHABET.index(second)


def real_shard_dir(split: str, data_dir: str | Path | None = None) -> Path:
    """Where real shards of ``split`` are looked for and downloaded to: ``<data_dir>/youtube8m/<split>``."""
    check_choice(split, "split", SPLITS)
    return resolve_data_dir(data_dir) / "youtube8m" / split


def md5sum(path: Path) -> str:
    """Hex MD5 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.md5()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline_error(url: str, reason: object, folder: Path) -> ConnectionError:
    return ConnectionError(
        f"cannot reach {url} ({reason}). Real YouTube-8M shards need a network connection: run "
        f"vclib.data.youtube8m.download() on a connected machine and copy the *.tfrecord files into "
        f"{folder}, or use the embedded synthetic data (source='embedded')."
    )


def _fetch(url: str, target: Path, expected_md5: str, timeout: float, folder: Path) -> None:
    """Download ``url`` to ``target`` through ``target.part``, resuming a partial download with an HTTP
    Range request, and check the MD5 before the rename."""
    if os.environ.get("VCLIB_OFFLINE") == "1":
        raise _offline_error(url, "VCLIB_OFFLINE=1", folder)
    partial = target.with_name(target.name + ".part")
    start = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    print(f"downloading {url} -> {target.name}" + (f" (resuming after {start:,} bytes)" if start else ""))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) URLs only
            mode = "ab" if start and response.status == 206 else "wb"  # 200: the server sent it all again
            with partial.open(mode) as out:
                shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as error:
        if not (error.code == 416 and start):  # 416 after a full .part: nothing left to send
            raise ConnectionError(f"downloading {url} failed: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise _offline_error(url, getattr(error, "reason", error), folder) from error
    digest = md5sum(partial)
    if digest != expected_md5:
        partial.unlink()
        raise ValueError(f"{url}: MD5 of the download is {digest}, but the download plan expects "
                         f"{expected_md5}; the partial file was removed, call download() again")
    os.replace(partial, target)


def _download_plan(split: str, folder: Path, plan_url: str, timeout: float) -> dict[str, str]:
    """The split's {remote shard name: md5}, from a cached copy in ``folder`` or from ``plan_url``."""
    cached = folder / f"download_plan_video_{split}.json"
    if not cached.is_file():
        if os.environ.get("VCLIB_OFFLINE") == "1":
            raise _offline_error(plan_url, "VCLIB_OFFLINE=1", folder)
        try:
            with urllib.request.urlopen(plan_url, timeout=timeout) as response:  # noqa: S310
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as error:
            raise _offline_error(plan_url, getattr(error, "reason", error), folder) from error
        partial = cached.with_name(cached.name + ".part")
        partial.write_text(text)
        os.replace(partial, cached)
    try:
        files = json.loads(cached.read_text())["files"]
    except (ValueError, KeyError, TypeError) as error:
        cached.unlink()
        raise ValueError(f"{cached} is not a YouTube-8M download plan ({error}); it was removed, "
                         "call download() again") from error
    return dict(files)


def download(split: str = "train", num_shards: int = 1, data_dir: str | Path | None = None,
             mirror: str = "us", base_url: str | None = None, timeout: float = 60.0) -> list[Path]:
    """Download the first ``num_shards`` video-level shards of ``split`` (about 8 MB each).

    Shards land in ``<data_dir>/youtube8m/<split>/<split>NNNN.tfrecord``, where ``load_youtube8m`` finds
    them. Shards already there with the right MD5 are kept; a partial ``.part`` file is resumed.

    Args:
        split: ``"train"``, ``"validate"`` or ``"test"``.
        num_shards: how many shards (3,844 make the whole split).
        data_dir: defaults to the session's data directory.
        mirror: ``"us"``, ``"eu"`` or ``"asia"``.
        base_url: serve everything from ``base_url + "/2/..."`` instead (a local copy, or a test server).
        timeout: seconds to wait for the server.

    Raises:
        ConnectionError: the server cannot be reached (offline); the message says what to do instead.
        ValueError: a downloaded shard does not match the MD5 of the download plan.
    """
    check_choice(split, "split", SPLITS)
    check_positive_int(num_shards, "num_shards")
    check_choice(mirror, "mirror", MIRRORS)
    folder = real_shard_dir(split, data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    plan_url = PLAN_URL.format(split=split) if base_url is None \
        else f"{base_url}/2/download_plans/video_{split}.json"
    plan = _download_plan(split, folder, plan_url, timeout)
    names = sorted(plan, key=shard_index)[:num_shards]
    paths = []
    for name in names:
        target = folder / f"{split}{shard_index(name):04d}.tfrecord"
        if not (target.is_file() and md5sum(target) == plan[name]):
            url = SHARD_URL.format(mirror=mirror, split=split, name=name) if base_url is None \
                else f"{base_url}/2/video/{split}/{name}"
            _fetch(url, target, plan[name], timeout, folder)
        paths.append(target)
    return paths


