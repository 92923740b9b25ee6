"""YouTube-8M video-level records, streaming dataset, synthetic default, source choice and downloads.

Downloads are tested against a local HTTP server on 127.0.0.1 (with and without Range support), never
against the internet."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vclib.data.sources import reset_announcements
from vclib.data.tfrecord import encode_example, write_tfrecord
from vclib.data.youtube8m import (
    AUDIO_DIM,
    RGB_DIM,
    SyntheticConfig,
    YouTube8M,
    download,
    iter_records,
    load_youtube8m,
    resolve_shards,
    shard_index,
    synthetic_classes,
    synthetic_videos,
    write_records,
    write_synthetic_shards,
)
from vclib.data.youtube8m.synthetic import LABELS_PER_VIDEO, STRONG, feature_scale


@pytest.fixture(autouse=True)
def _fresh_announcements():
    """Loaders print their data line once per session; each test starts a new one."""
    reset_announcements()


TINY = SyntheticConfig(num_classes=20, train_videos=120, validate_videos=60, test_videos=30,
                       videos_per_shard=50, num_topics=4)


def make_records(count: int, num_classes: int = 10, seed: int = 0, prefix: str = "v") -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": f"{prefix}{i:03d}",
             "labels": sorted(rng.choice(num_classes, size=1 + i % 3, replace=False).tolist()),
             "mean_rgb": rng.standard_normal(RGB_DIM).astype(np.float32),
             "mean_audio": rng.standard_normal(AUDIO_DIM).astype(np.float32)} for i in range(count)]


def write_shards(folder, counts, num_classes=10):
    paths = []
    for shard, count in enumerate(counts):
        records = make_records(count, num_classes, seed=shard, prefix=f"s{shard}-")
        paths.append(write_records(folder / f"train{shard:04d}.tfrecord", records))
    return paths


# --- records ------------------------------------------------------------------------------------------


def test_write_then_iter_records_roundtrip(tmp_path):
    records = make_records(7)
    path = write_records(tmp_path / "train0000.tfrecord", records)
    read = list(iter_records(path))
    assert [r["id"] for r in read] == [r["id"] for r in records]
    assert [r["labels"] for r in read] == [r["labels"] for r in records]
    for got, want in zip(read, records, strict=True):
        np.testing.assert_array_equal(got["mean_rgb"], want["mean_rgb"])
        np.testing.assert_array_equal(got["mean_audio"], want["mean_audio"])
        assert got["mean_rgb"].dtype == np.float32 and got["mean_audio"].shape == (AUDIO_DIM,)


def test_write_records_rejects_bad_records(tmp_path):
    record = make_records(2)[1]
    with pytest.raises(ValueError, match=r"records\[0\] lacks the feature\(s\) \['mean_audio'\]"):
        write_records(tmp_path / "x.tfrecord", [{k: v for k, v in record.items() if k != "mean_audio"}])
    with pytest.raises(ValueError, match=r"records\[1\]: 'mean_rgb' must be 1024 floats, got \(3,\)"):
        write_records(tmp_path / "x.tfrecord", [record, {**record, "mean_rgb": np.zeros(3, np.float32)}])
    with pytest.raises(ValueError, match=r"'labels' must be >= 0"):
        write_records(tmp_path / "x.tfrecord", [{**record, "labels": [-1]}])


def test_record_without_required_feature_names_file_and_record(tmp_path):
    good = make_records(1)[0]
    payloads = [
        encode_example({"id": [b"ok"], "labels": np.array([1]), "mean_rgb": good["mean_rgb"],
                        "mean_audio": good["mean_audio"]}),
        encode_example({"id": [b"noaudio"], "labels": np.array([1]), "mean_rgb": good["mean_rgb"]}),
    ]
    path = write_tfrecord(tmp_path / "train0007.tfrecord", payloads)
    with pytest.raises(ValueError, match=r"train0007\.tfrecord: record 1 lacks .*\['mean_audio'\]"):
        list(iter_records(path))


def test_frame_level_style_record_is_rejected(tmp_path):
    payload = encode_example({"id": [b"x"], "labels": np.array([1]), "mean_rgb": [bytes(1024)],
                              "mean_audio": np.zeros(128, np.float32)})
    path = write_tfrecord(tmp_path / "frame.tfrecord", [payload])
    with pytest.raises(ValueError, match=r"frame\.tfrecord: record 0: 'mean_rgb' must be 1024 floats"):
        list(iter_records(path))


def test_corrupted_and_truncated_shards_name_file_and_record(tmp_path):
    path = write_records(tmp_path / "train0001.tfrecord", make_records(3))
    blob = bytearray(path.read_bytes())
    record_size = len(blob) // 3  # equal-size records: 3 labels at most, all < 128
    blob[record_size + 100] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"train0001\.tfrecord: record 1 is corrupt"):
        list(iter_records(path))
    intact = write_records(tmp_path / "train0002.tfrecord", make_records(3)).read_bytes()
    path.write_bytes(intact[: 2 * record_size + 50])
    with pytest.raises(ValueError, match=r"train0001\.tfrecord: record 2 is truncated"):
        list(iter_records(path))


def test_missing_shards_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train0042.tfrecord"):
        list(iter_records(tmp_path / "train0042.tfrecord"))
    with pytest.raises(FileNotFoundError, match="train0042.tfrecord"):
        YouTube8M([tmp_path / "train0042.tfrecord"])
    with pytest.raises(FileNotFoundError, match=r"no shard file matches the pattern .*zzz\*\.tfrecord"):
        resolve_shards(str(tmp_path / "zzz*.tfrecord"))
    with pytest.raises(FileNotFoundError, match="no \\*.tfrecord shard in the directory"):
        resolve_shards(tmp_path)


# --- the streaming dataset ----------------------------------------------------------------------------


def test_dataset_yields_features_multi_hot_labels_and_ids(tmp_path):
    paths = write_shards(tmp_path, [4, 3])
    items = list(YouTube8M(str(tmp_path / "train*.tfrecord"), num_classes=10))
    assert len(items) == 7
    features, labels, video_id = items[0]
    first = next(iter_records(paths[0]))
    assert features.shape == (1152,) and features.dtype == torch.float32
    expected = np.concatenate([first["mean_rgb"], first["mean_audio"]])
    torch.testing.assert_close(features, torch.from_numpy(expected))
    assert labels.shape == (10,) and labels.dtype == torch.float32
    assert torch.nonzero(labels).flatten().tolist() == first["labels"]
    assert video_id == first["id"]


def test_modalities(tmp_path):
    write_shards(tmp_path, [2])
    (rgb, audio), labels, _ = next(iter(YouTube8M(tmp_path, num_classes=10, modality="split")))
    assert rgb.shape == (RGB_DIM,) and audio.shape == (AUDIO_DIM,)
    assert next(iter(YouTube8M(tmp_path, num_classes=10, modality="rgb")))[0].shape == (RGB_DIM,)
    assert next(iter(YouTube8M(tmp_path, num_classes=10, modality="audio")))[0].shape == (AUDIO_DIM,)
    with pytest.raises(ValueError, match="modality must be one of"):
        YouTube8M(tmp_path, modality="video")


def test_label_beyond_num_classes_names_file_and_record(tmp_path):
    records = make_records(3, num_classes=10)
    records[2]["labels"] = [3, 12]
    path = write_records(tmp_path / "train0003.tfrecord", records)
    with pytest.raises(ValueError, match=r"train0003\.tfrecord: record 2 .*label 12, but num_classes is 10"):
        list(YouTube8M(path, num_classes=10))
    with pytest.raises(ValueError, match=r"record 2"):
        YouTube8M(path, num_classes=10).read_all()


def test_workers_split_shards_without_duplicates(tmp_path):
    write_shards(tmp_path, [5, 3, 4])
    dataset = YouTube8M(tmp_path, num_classes=10)
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    ids = [video_id for batch in loader for video_id in batch[2]]
    expected = [r["id"] for path in dataset.files for r in iter_records(path)]
    assert Counter(ids) == Counter(expected) and len(ids) == 12


def test_shuffle_changes_order_between_epochs_but_not_content(tmp_path):
    write_shards(tmp_path, [6, 6, 6])
    dataset = YouTube8M(tmp_path, num_classes=10, shuffle=True)
    torch.manual_seed(3)
    first = [item[2] for item in dataset]
    second = [item[2] for item in dataset]
    torch.manual_seed(3)
    again = [item[2] for item in dataset]
    assert sorted(first) == sorted(second) and first != second
    assert again == first


def test_read_all_matches_the_stream(tmp_path):
    write_shards(tmp_path, [4, 2])
    stream = YouTube8M(tmp_path, num_classes=10)
    memory = stream.read_all()
    assert len(memory) == 6 and memory.rgb.shape == (6, RGB_DIM) and memory.labels.shape == (6, 10)
    for (x_stream, y_stream, id_stream), (x_memory, y_memory, id_memory) in zip(stream, memory, strict=True):
        torch.testing.assert_close(x_stream, x_memory)
        torch.testing.assert_close(y_stream, y_memory)
        assert id_stream == id_memory
    split = memory.with_modality("split")
    assert split[0][0][0].shape == (RGB_DIM,) and split.rgb is memory.rgb


# --- the synthetic default ----------------------------------------------------------------------------


def test_synthetic_videos_are_deterministic_and_well_formed():
    videos = synthetic_videos("train", TINY)
    again = synthetic_videos("train", TINY)
    assert [v["id"] for v in videos] == [v["id"] for v in again]
    np.testing.assert_array_equal(videos[5]["mean_rgb"], again[5]["mean_rgb"])
    assert len(videos) == TINY.train_videos
    assert all(1 <= len(v["labels"]) <= len(LABELS_PER_VIDEO) for v in videos)
    assert all(len(set(v["labels"])) == len(v["labels"]) for v in videos)
    assert all(0 <= label < TINY.num_classes for v in videos for label in v["labels"])
    ids = [v["id"] for split in ("train", "validate", "test") for v in synthetic_videos(split, TINY)]
    assert len(set(ids)) == len(ids) and all(len(i) == 4 for i in ids)


def test_synthetic_labels_are_zipf_like_and_co_occur_within_topics():
    config = SyntheticConfig()
    videos = synthetic_videos("train", config)
    counts = np.bincount([label for v in videos for label in v["labels"]], minlength=config.num_classes)
    assert counts[:10].sum() > 5 * counts[-10:].sum()  # a long tail
    assert counts[-10:].min() > 0  # but every class is seen
    topic = synthetic_classes(config).topic
    pairs = [(a, b) for v in videos for a in v["labels"] for b in v["labels"] if a < b]
    same_topic = np.mean([topic[a] == topic[b] for a, b in pairs])
    assert same_topic > 3 / config.num_topics  # chance would be about 1 / num_topics


def test_synthetic_features_carry_the_class_structure():
    """A scorer that knows the prototypes finds the labels, and two-look classes need |projection|."""
    config = SyntheticConfig()
    classes = synthetic_classes(config)
    videos = synthetic_videos("validate", config)
    rgb = np.stack([v["mean_rgb"] for v in videos]) / feature_scale("rgb")  # undo the PCA-like scaling
    labels = np.zeros((len(videos), config.num_classes), dtype=bool)
    for row, video in enumerate(videos):
        labels[row, video["labels"]] = True
    projection = rgb @ classes.rgb_prototype.T  # (N, C)
    vision = np.flatnonzero((classes.rgb_strength > classes.audio_strength) & ~classes.two_looks)
    two_looks = np.flatnonzero((classes.rgb_strength > classes.audio_strength) & classes.two_looks)
    present = projection[:, vision][labels[:, vision]].mean()
    absent = projection[:, vision][~labels[:, vision]].mean()
    assert present > absent + 0.5 * STRONG * config.signal
    signed = projection[:, two_looks][labels[:, two_looks]]
    assert abs(signed.mean()) < 0.25 * np.abs(signed).mean()  # the looks cancel on average


def test_synthetic_shards_are_written_once_and_read_back(tmp_path):
    paths = write_synthetic_shards("validate", TINY, data_dir=tmp_path)
    assert [p.name for p in paths] == ["validate0000.tfrecord", "validate0001.tfrecord"]
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert write_synthetic_shards("validate", TINY, data_dir=tmp_path) == paths
    assert [p.stat().st_mtime_ns for p in paths] == stamps
    read = [r for p in paths for r in iter_records(p)]
    made = synthetic_videos("validate", TINY)
    assert [r["labels"] for r in read] == [v["labels"] for v in made]
    np.testing.assert_array_equal(read[-1]["mean_audio"], made[-1]["mean_audio"])


# --- choosing the source ------------------------------------------------------------------------------


def test_auto_uses_embedded_without_real_shards_and_says_so(tmp_path, capsys):
    dataset = load_youtube8m("validate", data_dir=tmp_path, synthetic=TINY)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "embedded" in out and "synthetic" in out
    assert dataset.num_classes == TINY.num_classes
    assert sum(1 for _ in dataset) == TINY.validate_videos


def test_auto_prefers_real_shards(tmp_path, capsys):
    folder = tmp_path / "youtube8m" / "train"
    write_shards(folder, [3], num_classes=50)
    dataset = load_youtube8m("train", data_dir=tmp_path)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "real" in out and "1 train shards" in out
    assert dataset.num_classes == 3862 and dataset.files == [folder / "train0000.tfrecord"]
    assert load_youtube8m("train", source="embedded", data_dir=tmp_path, synthetic=TINY).num_classes == 20


def test_bad_sources_and_missing_real_shards(tmp_path):
    with pytest.raises(ValueError, match="source must be one of .*'bogus'"):
        load_youtube8m("train", source="bogus", data_dir=tmp_path)
    with pytest.raises(ValueError, match="split must be one of .*'val'"):
        load_youtube8m("val", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no YouTube-8M validate shards"):
        load_youtube8m("validate", source="real", data_dir=tmp_path)


# --- downloads from a local server --------------------------------------------------------------------


class ShardServer(BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes); honours ``Range: bytes=N-`` when ``server.ranges``."""

    def do_GET(self):  # noqa: N802 - http.server's naming
        body = self.server.files.get(self.path)
        wanted = self.headers.get("Range")
        self.server.requests.append((self.path, wanted))
        if body is None:
            self.send_error(404)
            return
        status, start = 200, 0
        if wanted and self.server.ranges:
            start = int(wanted.removeprefix("bytes=").removesuffix("-"))
            if start >= len(body):
                self.send_error(416)
                return
            status = 206
        self.server.sent += len(body) - start  # counted before sending: the client may check right after
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def shard_server(tmp_path, monkeypatch):
    monkeypatch.delenv("VCLIB_OFFLINE", raising=False)  # the server is on this machine
    source = tmp_path / "served"
    shards = {name: write_records(source / name, make_records(4, seed=i, prefix=name[:7]))
              for i, name in enumerate(["trainab.tfrecord", "trainaa.tfrecord", "trainBa.tfrecord"])}
    plan = {"files": {name: hashlib.md5(path.read_bytes()).hexdigest() for name, path in shards.items()}}
    server = ThreadingHTTPServer(("127.0.0.1", 0), ShardServer)
    server.files = {"/2/download_plans/video_train.json": json.dumps(plan).encode()}
    server.files.update({f"/2/video/train/{name}": path.read_bytes() for name, path in shards.items()})
    server.requests, server.sent, server.ranges = [], 0, True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def test_shard_index_follows_the_public_naming():
    assert shard_index("trainaa.tfrecord") == 0
    assert shard_index("trainab.tfrecord") == 1
    assert shard_index("validateba.tfrecord") == 62
    assert shard_index("train99.tfrecord") == 62 * 62 - 1
    with pytest.raises(ValueError, match="name must end in two characters"):
        shard_index("train-!.tfrecord")


def test_download_fetches_the_first_shards_in_index_order(tmp_path, shard_server):
    paths = download("train", num_shards=2, data_dir=tmp_path / "data", base_url=shard_server.base_url)
    folder = tmp_path / "data" / "youtube8m" / "train"
    assert paths == [folder / "train0000.tfrecord", folder / "train0001.tfrecord"]
    assert paths[0].read_bytes() == shard_server.files["/2/video/train/trainaa.tfrecord"]
    assert [r["id"] for r in iter_records(paths[1])][0].startswith("trainab")
    assert not list(folder.glob("*.part"))
    # Everything is there now: a second call needs no network at all.
    shard_server.requests.clear()
    again = download("train", num_shards=2, data_dir=tmp_path / "data", base_url=shard_server.base_url)
    assert again == paths
    assert shard_server.requests == []
    dataset = load_youtube8m("train", data_dir=tmp_path / "data")
    assert len(list(dataset)) == 8


@pytest.mark.parametrize("ranges", [True, False])
def test_download_resumes_a_partial_file(tmp_path, shard_server, ranges):
    shard_server.ranges = ranges
    body = shard_server.files["/2/video/train/trainaa.tfrecord"]
    folder = tmp_path / "youtube8m" / "train"
    folder.mkdir(parents=True)
    (folder / "train0000.tfrecord.part").write_bytes(body[:1000])
    (path,) = download("train", num_shards=1, data_dir=tmp_path, base_url=shard_server.base_url)
    assert path.read_bytes() == body
    assert ("/2/video/train/trainaa.tfrecord", "bytes=1000-") in shard_server.requests
    plan_size = len(shard_server.files["/2/download_plans/video_train.json"])
    assert shard_server.sent - plan_size == (len(body) - 1000 if ranges else len(body))


def test_download_with_a_wrong_checksum_removes_the_partial_file(tmp_path, shard_server):
    shard_server.files["/2/video/train/trainaa.tfrecord"] = b"not the shard"
    with pytest.raises(ValueError, match="trainaa.tfrecord: MD5 of the download is"):
        download("train", num_shards=1, data_dir=tmp_path, base_url=shard_server.base_url)
    assert not list((tmp_path / "youtube8m" / "train").glob("train0000*"))


def test_download_offline_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("VCLIB_OFFLINE", raising=False)
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionError, match=r"cannot reach .*video_train\.json.*source='embedded'"):
        download("train", data_dir=tmp_path, base_url=f"http://127.0.0.1:{port}", timeout=5)
    monkeypatch.setenv("VCLIB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="VCLIB_OFFLINE=1"):
        download("validate", data_dir=tmp_path)


def test_download_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        download("dev", data_dir=tmp_path)
    with pytest.raises(ValueError, match="num_shards must be an int >= 1"):
        download("train", num_shards=0, data_dir=tmp_path)
    with pytest.raises(ValueError, match="mirror must be one of"):
        download("train", mirror="mars", data_dir=tmp_path)
