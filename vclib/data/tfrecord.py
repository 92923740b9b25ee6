"""TFRecord files and ``tf.train.Example`` messages, read and written without TensorFlow.

A TFRecord file is a plain sequence of records. Each record is framed as (little-endian)::

    uint64 length | uint32 masked_crc32c(length bytes) | data[length] | uint32 masked_crc32c(data)

The checksum is CRC-32C (Castagnoli polynomial, as in iSCSI), "masked" by a rotation and an added
constant so that a file of CRCs does not checksum to itself. The data of each record is usually a
serialized ``tf.train.Example`` protocol buffer: a map from feature names to a list of bytes, floats or
int64s. We describe that message to the ``protobuf`` package in code, mirroring TensorFlow's
``feature.proto`` and ``example.proto``, so no TensorFlow install is needed.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

# ---------------------------------------------------------------------------------------------------
# CRC-32C

CRC32C_POLY = 0x82F63B78  # the Castagnoli polynomial 0x1EDC6F41, bit-reversed
MASK_DELTA = 0xA282EAD8


def _crc32c_table() -> np.ndarray:
    """The 256 CRCs of single bytes: ``table[b]`` is the effect of one byte on the register."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(CRC32C_POLY), table >> 1).astype(np.uint32)
    return table


CRC32C_TABLE = _crc32c_table()
_TABLE_LIST = [int(v) for v in CRC32C_TABLE]


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data``, one byte at a time (fine for short data such as an 8-byte length)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE_LIST[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc32c_side_by_side(chunks: Sequence[bytes]) -> np.ndarray:
    """CRC-32C of byte strings sorted longest first, run side by side one byte column at a time."""
    lengths = np.array([len(chunk) for chunk in chunks], dtype=np.int64)  # (R,), non-increasing
    columns = np.zeros((int(lengths[0]), len(chunks)), dtype=np.uint8)  # (L, R): one column per string
    for column, chunk in enumerate(chunks):
        columns[: len(chunk), column] = np.frombuffer(chunk, dtype=np.uint8)
    # running[j]: how many strings are longer than j bytes, i.e. still need byte j (a prefix, as sorted)
    running = np.searchsorted(-lengths, -np.arange(columns.shape[0]), side="left")  # (L,)
    crc = np.full(len(chunks), 0xFFFFFFFF, dtype=np.uint32)  # (R,)
    for j, count in enumerate(running):
        active = crc[:count]
        crc[:count] = CRC32C_TABLE[(active ^ columns[j, :count]) & 0xFF] ^ (active >> 8)
    return crc ^ np.uint32(0xFFFFFFFF)


def crc32c_many(chunks: Sequence[bytes], batch_bytes: int = 64 << 20) -> np.ndarray:
    """CRC-32C of many byte strings at once: ``(R,)`` uint32.

    The CRC is a byte-serial recurrence, so instead of looping over the bytes of one string we run it for
    many strings side by side, one byte position at a time (fast for many records of similar length).
    Strings are sorted by length and processed in batches of at most about ``batch_bytes`` bytes.
    """
    order = sorted(range(len(chunks)), key=lambda i: -len(chunks[i]))  # longest first
    result = np.zeros(len(chunks), dtype=np.uint32)
    start = 0
    while start < len(order):
        longest = max(1, len(chunks[order[start]]))
        batch = order[start : start + max(1, batch_bytes // longest)]
        if len(chunks[batch[0]]):  # the CRC of nothing is 0
            result[batch] = _crc32c_side_by_side([chunks[i] for i in batch])
        start += len(batch)
    return result


def masked_crc32c(crc: int | np.ndarray) -> int | np.ndarray:
    """TFRecord's mask: rotate right by 15 bits and add a constant (mod 2^32)."""
    if isinstance(crc, np.ndarray):
        crc = crc.astype(np.uint32)
        return ((crc >> 15) | (crc << 17)) + np.uint32(MASK_DELTA)  # uint32 arithmetic wraps
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------------
# Framing

HEADER = struct.Struct("<QI")  # length, masked CRC of the 8 length bytes
FOOTER = struct.Struct("<I")  # masked CRC of the data


def read_tfrecord(path: str | Path) -> list[bytes]:
    """The data of every record in a TFRecord file, with both checksums of every record verified.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a record is truncated or a checksum does not match; the message names the file and
            the record index.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TFRecord file not found: {path}")
    blob = path.read_bytes()
    records: list[bytes] = []
    stored_crcs: list[int] = []
    offset = 0
    while offset < len(blob):
        index = len(records)
        if offset + HEADER.size > len(blob):
            raise ValueError(f"{path}: record {index} is truncated: expected a {HEADER.size}-byte header at "
                             f"byte {offset}, found {len(blob) - offset} bytes")
        length, length_crc = HEADER.unpack_from(blob, offset)
        if masked_crc32c(crc32c(blob[offset : offset + 8])) != length_crc:
            raise ValueError(f"{path}: record {index} has a corrupt length "
                             f"(checksum mismatch at byte {offset})")
        start = offset + HEADER.size
        end = start + length + FOOTER.size
        if end > len(blob):
            raise ValueError(f"{path}: record {index} is truncated: expected {length + FOOTER.size} bytes of "
                             f"data and checksum after byte {start}, found {len(blob) - start}")
        records.append(blob[start : start + length])
        stored_crcs.append(FOOTER.unpack_from(blob, start + length)[0])
        offset = end
    data_crcs = masked_crc32c(crc32c_many(records))  # (R,)
    bad = np.flatnonzero(data_crcs != np.array(stored_crcs, dtype=np.uint32))
    if bad.size:
        raise ValueError(f"{path}: record {int(bad[0])} is corrupt (data checksum mismatch)")
    return records


def write_tfrecord(path: str | Path, records: Iterable[bytes]) -> Path:
    """Write records to a TFRecord file; the file appears complete or not at all (``.part`` + rename)."""
    path = Path(path)
    records = list(records)
    data_crcs = masked_crc32c(crc32c_many(records))  # (R,)
    frames = []
    for record, data_crc in zip(records, data_crcs, strict=True):
        length = struct.pack("<Q", len(record))
        length_crc = masked_crc32c(crc32c(length))
        frames += [length, struct.pack("<I", length_crc), record, FOOTER.pack(int(data_crc))]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.part")
    partial.write_bytes(b"".join(frames))
    os.replace(partial, path)
    return path


# ---------------------------------------------------------------------------------------------------
# tf.train.Example
#
#   message BytesList { repeated bytes value = 1; }
#   message FloatList { repeated float value = 1 [packed = true]; }
#   message Int64List { repeated int64 value = 1 [packed = true]; }
#   message Feature {
#     oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; }
#   }
#   message Features { map<string, Feature> feature = 1; }
#   message Example { Features features = 1; }


def _example_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The schema above, written as the descriptor that ``protoc`` would produce."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="vclib/tf_example.proto", package="tensorflow",
                                               syntax="proto3")

    def message(name: str, fields: list[tuple[str, int, int, int, str]]) -> descriptor_pb2.DescriptorProto:
        described = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            added = described.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                added.type_name = type_name
        return described

    repeated, optional = field.LABEL_REPEATED, field.LABEL_OPTIONAL
    message("BytesList", [("value", 1, field.TYPE_BYTES, repeated, "")])
    message("FloatList", [("value", 1, field.TYPE_FLOAT, repeated, "")])  # proto3: packed by default
    message("Int64List", [("value", 1, field.TYPE_INT64, repeated, "")])
    feature = message("Feature", [("bytes_list", 1, field.TYPE_MESSAGE, optional, ".tensorflow.BytesList"),
                                  ("float_list", 2, field.TYPE_MESSAGE, optional, ".tensorflow.FloatList"),
                                  ("int64_list", 3, field.TYPE_MESSAGE, optional, ".tensorflow.Int64List")])
    feature.oneof_decl.add(name="kind")
    for member in feature.field:
        member.oneof_index = 0
    features = message("Features", [("feature", 1, field.TYPE_MESSAGE, repeated,
                                      ".tensorflow.Features.FeatureEntry")])
    entry = features.nested_type.add(name="FeatureEntry")  # a map is a repeated (key, value) message
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, label=optional,
                    type_name=".tensorflow.Feature")
    entry.options.map_entry = True
    message("Example", [("features", 1, field.TYPE_MESSAGE, optional, ".tensorflow.Features")])
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_example_descriptor())
Example = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.Example"))

FeatureValues = list[bytes] | np.ndarray


def encode_example(features: Mapping[str, FeatureValues]) -> bytes:
    """Serialize a ``tf.train.Example``.

    Args:
        features: name -> values. A list of ``bytes`` becomes a ``bytes_list``; an integer array an
            ``int64_list``; a floating array a ``float_list`` (stored as float32).
    """
    example = Example()
    for name, values in features.items():
        feature = example.features.feature[name]
        if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.integer):
            feature.int64_list.value.extend(values.astype(np.int64).tolist())
        elif isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.floating):
            feature.float_list.value.extend(values.astype(np.float32).tolist())
        elif isinstance(values, (list, tuple)) and all(isinstance(v, bytes) for v in values):
            feature.bytes_list.value.extend(values)
        else:
            raise ValueError(f"features[{name!r}] must be a list of bytes or an integer or floating numpy "
                             f"array, got {type(values).__name__}")
    return example.SerializeToString(deterministic=True)


def decode_example(data: bytes) -> dict[str, FeatureValues]:
    """Parse a serialized ``tf.train.Example``.

    Returns:
        name -> values: ``list[bytes]`` for a ``bytes_list``, float32 ``(n,)`` for a ``float_list``,
        int64 ``(n,)`` for an ``int64_list`` (an empty float32 array if the feature has no kind).

    Raises:
        ValueError: ``data`` is not a valid serialized ``Example``.
    """
    try:
        example = Example.FromString(data)
    except DecodeError as error:
        raise ValueError(f"data is not a serialized tf.train.Example: {error}") from error
    decoded: dict[str, FeatureValues] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "bytes_list":
            decoded[name] = list(feature.bytes_list.value)
        elif kind == "int64_list":
            decoded[name] = np.asarray(feature.int64_list.value, dtype=np.int64)
        else:
            decoded[name] = np.asarray(feature.float_list.value, dtype=np.float32)
    return decoded


def describe_example(data: bytes, max_values: int = 4) -> str:
    """A text view of a serialized ``Example``, in the style of protobuf's text format, with long value
    lists cut after ``max_values`` entries."""
    lines = ["features {"]
    for name, values in sorted(decode_example(data).items()):
        if isinstance(values, list):
            kind, shown = "bytes_list", [repr(v) for v in values[:max_values]]
        elif values.dtype == np.int64:
            kind, shown = "int64_list", [str(int(v)) for v in values[:max_values]]
        else:
            kind, shown = "float_list", [f"{float(v):.4f}" for v in values[:max_values]]
        more = f", ... ({len(values)} values)" if len(values) > max_values else ""
        value = f'{kind} {{ value: [{", ".join(shown)}{more}] }}'
        lines.append(f'  feature {{ key: "{name}" value {{ {value} }} }}')
    lines.append("}")
    return "\n".join(lines)
