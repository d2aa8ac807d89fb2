"""Binary frames: a JSON header followed by raw little-endian arrays.

Tasks and results are mostly numbers (genes, returns), which JSON spells out digit by
digit and parses back one value at a time.  A frame sends them as their bytes instead::

    MAGIC | header length (u32, little-endian) | header (JSON) | payload (arrays)

The header is an ordinary message whose array fields hold descriptors
``[offset, dtype, count]`` into the payload.  Arrays start on 8-byte boundaries, so
reading one is a zero-copy view.  Only the dtypes in ``DTYPES`` exist, and every descriptor
is bounds-checked, so a corrupt frame fails with ``ValueError``, never a crash.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

# A JSON body starts with "{" (or whitespace); a frame never does.
MAGIC = b"\x00EZB"
_LENGTH = struct.Struct("<I")
_ALIGN = 8
DTYPES: Mapping[str, np.dtype[Any]] = MappingProxyType(
    {
        "i4": np.dtype("<i4"),
        "i8": np.dtype("<i8"),
        "f8": np.dtype("<f8"),
        "b1": np.dtype("u1"),
    }
)


def is_frame(body: bytes) -> bool:
    """True when ``body`` is a binary frame rather than plain JSON."""
    return body[:4] == MAGIC


class Payload:
    """Arrays collected while a header is serialised (see :meth:`add`)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, array: NDArray[Any], integer: bool = False) -> list[Any]:
        """Append ``array``; its descriptor.  Integers travel as int32 when they fit."""
        if array.dtype == np.bool_:
            code, data = "b1", array.astype(np.uint8)
        elif integer or array.dtype.kind in "iu":
            small = array.size == 0 or (int(array.min()) >= -(2**31) and int(array.max()) < 2**31)
            code = "i4" if small else "i8"
            data = array.astype(DTYPES[code], copy=False)
        else:
            code, data = "f8", array.astype(DTYPES["f8"], copy=False)
        offset = self.size
        raw = np.ascontiguousarray(data).tobytes()
        pad = -len(raw) % _ALIGN
        self.chunks.append(raw + b"\x00" * pad)
        self.size += len(raw) + pad
        return [offset, code, int(array.size)]


def join(header: bytes, payload: Payload) -> bytes:
    """One frame from a JSON header and the payload its descriptors point into."""
    head = MAGIC + _LENGTH.pack(len(header)) + header
    pad = b"\x00" * (-len(head) % _ALIGN)
    return b"".join([head, pad, *payload.chunks])


def split(body: bytes) -> tuple[bytes, memoryview]:
    """The header and the payload of a frame (ValueError if it is cut short)."""
    if len(body) < 8 or not is_frame(body):
        raise ValueError("not a binary frame")
    (length,) = _LENGTH.unpack_from(body, 4)
    end = 8 + length
    if end > len(body):
        raise ValueError("binary frame cut short: header runs past the end")
    start = end + (-end % _ALIGN)
    return body[8:end], memoryview(body)[start:]


def read(
    payload: memoryview, descriptor: Any, shape: tuple[int, ...] | None = None
) -> NDArray[Any]:
    """The array a descriptor points at: a read-only view (ValueError if out of bounds)."""
    if not (
        isinstance(descriptor, list)
        and len(descriptor) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in descriptor[::2])
        and descriptor[1] in DTYPES
    ):
        raise ValueError(f"bad array descriptor {descriptor!r}: expected [offset, dtype, count]")
    offset, code, count = descriptor
    dtype = DTYPES[code]
    if offset < 0 or count < 0 or offset % _ALIGN or offset + count * dtype.itemsize > len(payload):
        raise ValueError(f"array descriptor {descriptor!r} points outside the payload")
    array = np.frombuffer(payload, dtype=dtype, count=count, offset=offset)
    if code == "b1":
        if count and int(array.max()) > 1:
            raise ValueError("a boolean column holds a value other than 0 or 1")
        array = array.view(np.bool_)
    if shape is not None:
        if int(np.prod(shape)) != count:
            raise ValueError(f"array of {count} values cannot have shape {shape}")
        array = array.reshape(shape)
    return np.asarray(array)
