"""Canonical encoding of records and ref values.

Records (task records, chunk lists, ...) and ref values are small JSON
documents. They are encoded canonically (sorted keys, no spaces, UTF-8) so
equal content always gives equal bytes and therefore the same object id, like
a Git commit. An ``ObjectId`` anywhere in the value is encoded as
``{"$oid": "<hex>"}``: that marker is how ``gc`` and ``fsck`` find every
object a record or ref reaches without knowing what the record means.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterator

from cafstore.exception import InvalidRecord
from cafstore.store.objectid import ObjectId

OID_MARKER = "$oid"
RECORD_MAGIC = b"cafrec1\n"


def _to_json(value: Any, path: str) -> Any:
    if isinstance(value, ObjectId):
        return {OID_MARKER: str(value)}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRecord(f"Record field {path} is {value!r}; records hold only finite numbers.")
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRecord(f"Record field {path} has a key {key!r} that is not a string.")
            if key == OID_MARKER:
                raise InvalidRecord(f"Record field {path} uses the reserved key {OID_MARKER!r}.")
            out[key] = _to_json(item, f"{path}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_to_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise InvalidRecord(
        f"Record field {path} holds a {type(value).__name__}; records hold JSON values and "
        "ObjectIds only (store anything else as an artifact and keep its id)."
    )


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and OID_MARKER in value:
            return ObjectId(value[OID_MARKER])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def encode(value: Any) -> bytes:
    """Canonical bytes of a JSON-like value (ObjectIds allowed anywhere)."""
    text = json.dumps(
        _to_json(value, "record"), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from a badly decoded file name
        raise InvalidRecord(
            f"A record holds text that is not valid Unicode ({exc.reason}: {exc.object[exc.start : exc.end]!r} "
            f"near {exc.object[max(0, exc.start - 30) : exc.start]!r}); records hold UTF-8 text only."
        ) from exc


_ID_ONLY = (b'{"' + OID_MARKER.encode() + b'":"', b'"}')  # the canonical bytes of a bare ObjectId


def decode(data: "bytes | memoryview") -> Any:
    raw = bytes(data)
    head, tail = _ID_ONLY
    if len(raw) == len(head) + 64 + len(tail) and raw.startswith(head) and raw.endswith(tail):
        # A value that is one ObjectId (every task ref): what the JSON path returns, without it.
        return ObjectId(raw[len(head) : len(head) + 64].decode("ascii", "replace"))
    return _from_json(json.loads(raw))


def encode_record(value: dict) -> bytes:
    if not isinstance(value, dict):
        raise InvalidRecord(f"A record is a dict, not a {type(value).__name__}.")
    return RECORD_MAGIC + encode(value)


def decode_record(data: "bytes | memoryview") -> dict:
    raw = bytes(data)
    if not raw.startswith(RECORD_MAGIC):
        raise InvalidRecord("These bytes are not a cafstore record (no record header).")
    return decode(raw[len(RECORD_MAGIC) :])


def referenced_ids(value: Any) -> Iterator[ObjectId]:
    """Every ObjectId inside a decoded record or ref value, depth first."""
    if isinstance(value, ObjectId):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from referenced_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from referenced_ids(item)
