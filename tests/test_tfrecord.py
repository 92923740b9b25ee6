"""TFRecord framing, CRC-32C and tf.train.Example encoding, checked against published test vectors and a
protobuf wire encoder written out by hand from TensorFlow's feature.proto / example.proto."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from vclib.data.tfrecord import (
    crc32c,
    crc32c_many,
    decode_example,
    describe_example,
    encode_example,
    masked_crc32c,
    read_tfrecord,
    write_tfrecord,
)

# RFC 3720 (iSCSI), appendix B.4, and the common "123456789" check value of CRC-32C.
RFC3720_VECTORS = [
    (bytes(32), 0x8A9136AA),
    (bytes([0xFF] * 32), 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"123456789", 0xE3069283),
]


def crc32c_bitwise(data: bytes) -> int:
    """CRC-32C straight from its definition: reflected polynomial 0x82F63B78, bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(("data", "expected"), RFC3720_VECTORS)
def test_crc32c_matches_published_vectors(data, expected):
    assert crc32c(data) == expected
    assert int(crc32c_many([data])[0]) == expected


def test_crc32c_many_matches_the_bitwise_definition_for_mixed_lengths():
    rng = np.random.default_rng(1)
    chunks = [rng.integers(0, 256, size=n, dtype=np.uint8).tobytes() for n in (0, 1, 7, 300, 64, 0, 513)]
    expected = [crc32c_bitwise(chunk) for chunk in chunks]
    assert crc32c_many(chunks).tolist() == expected
    assert crc32c_many(chunks, batch_bytes=600).tolist() == expected  # in several batches
    assert crc32c_many([]).shape == (0,)


def test_masked_crc_rotates_and_adds_the_constant():
    for crc in (0, 1, 0xE3069283, 0xFFFFFFFF):
        rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
        assert masked_crc32c(crc) == (rotated + 0xA282EAD8) % 2**32
        assert int(masked_crc32c(np.array([crc], dtype=np.uint32))[0]) == masked_crc32c(crc)


def test_write_tfrecord_lays_out_length_crc_data_crc(tmp_path):
    path = write_tfrecord(tmp_path / "one.tfrecord", [b"abc"])
    length = struct.pack("<Q", 3)
    expected = length + struct.pack("<I", masked_crc32c(crc32c_bitwise(length))) + b"abc" \
        + struct.pack("<I", masked_crc32c(crc32c_bitwise(b"abc")))
    assert path.read_bytes() == expected
    assert not list(tmp_path.glob("*.part"))


def test_roundtrip_including_an_empty_record(tmp_path):
    records = [b"first", b"", bytes(range(256)) * 5]
    path = write_tfrecord(tmp_path / "r.tfrecord", records)
    assert read_tfrecord(path) == records


def _three_records(tmp_path):
    path = write_tfrecord(tmp_path / "bad.tfrecord", [b"a" * 10, b"b" * 20, b"c" * 30])
    return path, bytearray(path.read_bytes())


def test_corrupt_data_names_file_and_record(tmp_path):
    path, blob = _three_records(tmp_path)
    second_data = (12 + 10 + 4) + 12  # first frame, then the second header
    blob[second_data + 5] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"bad\.tfrecord: record 1 is corrupt"):
        read_tfrecord(path)


def test_corrupt_length_names_file_and_record(tmp_path):
    path, blob = _three_records(tmp_path)
    blob[(12 + 10 + 4) + 2] ^= 0x40  # a byte of the second length
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"bad\.tfrecord: record 1 has a corrupt length"):
        read_tfrecord(path)


@pytest.mark.parametrize("cut", [5, 20])
def test_truncated_file_names_file_and_record(tmp_path, cut):
    path, blob = _three_records(tmp_path)
    third_start = 2 * 12 + 10 + 20 + 2 * 4
    path.write_bytes(bytes(blob[: third_start + cut]))  # inside the header (5) or the data (20)
    with pytest.raises(ValueError, match=r"bad\.tfrecord: record 2 is truncated"):
        read_tfrecord(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.tfrecord"):
        read_tfrecord(tmp_path / "nowhere.tfrecord")


# --- tf.train.Example, against a wire encoder written from the .proto files --------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 two's complement
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def hand_example(name: str, kind_field: int, list_payload: bytes) -> bytes:
    """Example{features(1): Features{feature(1): entry{key(1): name, value(2): Feature{kind: list}}}}."""
    feature = length_delimited(kind_field, list_payload)
    entry = length_delimited(1, name.encode()) + length_delimited(2, feature)
    return length_delimited(1, length_delimited(1, entry))


def test_encoding_matches_the_wire_format_of_example_proto():
    floats = np.array([0.5, -2.0, 3.25], dtype=np.float32)
    packed_floats = length_delimited(1, floats.astype("<f4").tobytes())  # FloatList.value, packed
    assert encode_example({"mean_rgb": floats}) == hand_example("mean_rgb", 2, packed_floats)
    ints = np.array([1, 522, -3], dtype=np.int64)
    packed_ints = length_delimited(1, b"".join(varint(int(v)) for v in ints))  # Int64List.value, packed
    assert encode_example({"labels": ints}) == hand_example("labels", 3, packed_ints)
    assert encode_example({"id": [b"Ab3d"]}) == hand_example("id", 1, length_delimited(1, b"Ab3d"))


def test_decoding_reads_unpacked_floats_too():
    values = [1.5, -0.25]
    unpacked = b"".join(varint(1 << 3 | 5) + struct.pack("<f", v) for v in values)  # wire type 5, one by one
    decoded = decode_example(hand_example("x", 2, unpacked))
    assert decoded["x"].dtype == np.float32 and decoded["x"].tolist() == values


def test_example_roundtrip_keeps_kinds_and_values():
    features = {
        "id": [b"x1", b""],
        "labels": np.array([0, 2**40, -7]),
        "mean_audio": np.linspace(-1, 1, 128).astype(np.float32),
    }
    decoded = decode_example(encode_example(features))
    assert decoded["id"] == [b"x1", b""]
    assert decoded["labels"].dtype == np.int64 and decoded["labels"].tolist() == [0, 2**40, -7]
    np.testing.assert_array_equal(decoded["mean_audio"], features["mean_audio"])


def test_bad_example_inputs_raise():
    with pytest.raises(ValueError, match=r"features\['x'\]"):
        encode_example({"x": "not bytes"})
    with pytest.raises(ValueError, match="tf.train.Example"):
        decode_example(b"\xff\xff\xff")


def test_describe_example_shows_kinds_and_cuts_long_lists():
    text = describe_example(encode_example({"id": [b"Ab3d"], "mean_rgb": np.zeros(1024, np.float32)}))
    assert 'key: "id"' in text and "bytes_list" in text
    assert "float_list" in text and "(1024 values)" in text
