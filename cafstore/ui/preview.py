"""Safe, short previews of artifact values for the task page.

A task can hold a 10 GiB array next to a 3-byte string, so a preview is
decided from the object's size in the index *before* anything is unpickled:
an artifact over :data:`LOAD_LIMIT` is listed with its size only (its type
is not known without loading it, and loading it is the cost we refuse).
What is loaded is shown shortened: strings and containers cut to a few
hundred characters, arrays as shape/dtype/summary, DataFrames as their head,
PNG/JPEG bytes as an image. Every piece of text goes to the page through
the template's autoescaping; only the image's base64 data URI is built here.
"""

from __future__ import annotations

import base64
import reprlib
from typing import Any, Dict, List, Optional

from cafstore.client.views.text import human_size, short_repr

#: artifacts bigger than this (stored bytes) are not unpickled for a preview
LOAD_LIMIT = 8 * 1024 * 1024
#: characters of text shown for a value
TEXT_LIMIT = 600
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _brief(value: Any) -> str:
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = shortener.maxlong = 200
    shortener.maxlist = shortener.maxtuple = shortener.maxset = shortener.maxfrozenset = shortener.maxdeque = 20
    shortener.maxdict = 20
    shortener.maxlevel = 4
    try:
        return short_repr(_Shown(shortener.repr(value)), TEXT_LIMIT)
    except Exception as exc:  # a user's __repr__ can raise anything: say so instead of failing the page
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}: {exc}>"


class _Shown(str):
    def __repr__(self) -> str:
        return str(self)


def _image(value: bytes) -> Optional[Dict[str, Any]]:
    for magic, mime in _IMAGE_MAGIC:
        if value.startswith(magic):
            return {"kind": "image", "src": f"data:{mime};base64," + base64.b64encode(value).decode("ascii")}
    return None


def _array(value: Any) -> Dict[str, Any]:
    facts = [("shape", str(tuple(value.shape))), ("dtype", str(value.dtype))]
    try:
        if value.size and value.dtype.kind in "biuf" and value.size <= 50_000_000:
            facts += [("min", repr(value.min().item())), ("max", repr(value.max().item()))]
            facts.append(("mean", f"{value.mean().item():.6g}"))
    except Exception:  # an exotic array (object fields, NaT...): the shape and dtype still say enough
        pass
    return {"kind": "facts", "facts": facts, "text": _brief(value)}


def _frame(value: Any) -> Dict[str, Any]:
    head = value.head(10)
    columns = [str(c) for c in head.columns]
    rows: List[List[str]] = [[str(i)] + [short_repr(v, 80) for v in row] for i, row in zip(head.index, head.values)]
    facts = [("shape", str(tuple(value.shape)))]
    return {"kind": "table", "facts": facts, "columns": [""] + columns, "rows": rows}


def preview(value: Any) -> Dict[str, Any]:
    """What the task page shows for ``value``: a dict with ``kind`` (text, facts, table or image)."""
    module = type(value).__module__.split(".")[0]
    if module == "numpy" and hasattr(value, "shape") and hasattr(value, "dtype"):
        return _array(value)
    if module == "pandas" and type(value).__name__ == "DataFrame":
        try:
            return _frame(value)
        except Exception:  # a frame pandas cannot show: fall back to its repr
            pass
    if isinstance(value, (bytes, bytearray)):
        shown = _image(bytes(value[:16])) and _image(bytes(value))
        if shown:
            return shown
    if isinstance(value, str):
        text = (
            value
            if len(value) <= TEXT_LIMIT
            else f"{value[:TEXT_LIMIT]}... ({len(value) - TEXT_LIMIT} more characters)"
        )
        return {"kind": "text", "text": text, "quoted": True}
    return {"kind": "text", "text": _brief(value)}


def artifact_rows(store: Any, task: Any, load_limit: int = LOAD_LIMIT) -> List[Dict[str, Any]]:
    """One row per artifact of ``task``: name, size (from the index), whether the task assigned it, and
    the type and preview when the value is small enough to load."""
    new = set(task.record.get("new_artifacts") or ())
    rows = []
    for name, oid in sorted(task.artifact_ids.items()):
        size = store.stat(oid).size
        row: Dict[str, Any] = {"name": name, "size": size, "size_text": human_size(size), "new": name in new}
        if size > load_limit:
            row.update(
                type="(not loaded)", preview={"kind": "skipped", "text": f"{human_size(size)}: too big to preview"}
            )
        else:
            try:
                value = task.artifact_value(name)
            except Exception as exc:  # a class the server cannot import, a corrupt object: show why
                row.update(type="(unreadable)", preview={"kind": "error", "text": f"{type(exc).__name__}: {exc}"})
            else:
                row.update(type=type_name(value), preview=preview(value))
        rows.append(row)
    return rows
