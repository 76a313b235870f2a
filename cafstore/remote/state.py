"""What a remote holds, from one listing: the runs' ref versions, the packs, the loose objects.

Everything a remote stores is immutable once written -- objects, packs,
pack indexes, and each version of a run's ref (a new version is a new key,
``refcas.py``) -- so what has been read once is cached in the local store
(``cache/remotes/<hash of the URL>/``) and never read again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from cafstore.exception import CafstoreError, RemoteError
from cafstore.remote import packs
from cafstore.remote.transport import Listed, Transport
from cafstore.store import records
from cafstore.store.objectid import ObjectId

REFS_PREFIX = "refs/runs/"
LOOSE_PREFIX = "objects/"
TMP_PREFIX = "tmp/"


def is_store_id(text: str) -> bool:
    return bool(text) and len(text) <= 64 and text.replace("-", "").isalnum() and text.isascii()


def is_pack_id(text: object) -> bool:
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def ref_base(flow: str, store_id: str, run_id: int) -> str:
    """The folder holding a run's ref versions: ``refs/runs/<Flow>/<store id>/<run:010d>/``."""
    return f"{REFS_PREFIX}{flow}/{store_id}/{run_id:010d}/"


def version_key(base: str, version: int) -> str:
    return f"{base}{version:010d}"


def parse_ref_key(key: str) -> Optional[tuple[tuple[str, str, int], int]]:
    """``refs/runs/F/S/0000000003/0000000002`` -> (("F", "S", 3), 2); None for any other key."""
    parts = key[len(REFS_PREFIX) :].split("/") if key.startswith(REFS_PREFIX) else []
    if len(parts) != 4 or not (parts[2].isdigit() and parts[3].isdigit()):
        return None
    if not parts[0].isidentifier() or not is_store_id(parts[1]):  # keys name local paths too: no "..", no "/"
        return None
    return (parts[0], parts[1], int(parts[2])), int(parts[3])


@dataclass
class RunRef:
    """One run on the remote: its identity, every version key present, the newest one's."""

    identity: tuple[str, str, int]
    versions: dict = field(default_factory=dict)  # version -> Listed

    @property
    def latest(self) -> int:
        return max(self.versions)

    @property
    def key(self) -> str:
        return self.versions[self.latest].key


@dataclass
class RemoteState:
    runs: dict = field(default_factory=dict)  # (flow, store, run) -> RunRef
    packs: dict = field(default_factory=dict)  # pack id -> Listed of its .pack
    indexes: dict = field(default_factory=dict)  # pack id -> Listed of its .idx
    loose: dict = field(default_factory=dict)  # ObjectId -> Listed
    other: list = field(default_factory=list)  # tmp/ files and anything unknown


def scan(transport: Transport) -> RemoteState:
    """The remote's state, from one listing (S3 lists keys in order: objects/, packs/, refs/, so a
    ref is listed after the packs it names were; gc relies on it)."""
    state = RemoteState()
    for item in transport.list(""):
        key = item.key
        parsed = parse_ref_key(key)
        if parsed is not None:
            identity, version = parsed
            state.runs.setdefault(identity, RunRef(identity)).versions[version] = item
        elif key.startswith("packs/") and key.endswith((".pack", ".idx")) and is_pack_id(key[6:].rpartition(".")[0]):
            name, _, kind = key[len("packs/") :].rpartition(".")
            (state.packs if kind == "pack" else state.indexes)[name] = item
        elif key.startswith(LOOSE_PREFIX) and len(key) == len(LOOSE_PREFIX) + 64:
            try:
                state.loose[ObjectId(key[len(LOOSE_PREFIX) :])] = item
            except ValueError:
                state.other.append(item)
        else:
            state.other.append(item)
    return state


class RemoteCache:
    """Immutable remote keys already read (ref versions, pack indexes), kept under the local store."""

    def __init__(self, store: Any, transport: Transport) -> None:
        digest = hashlib.sha256(transport.url.encode()).hexdigest()[:24]
        self.directory = Path(store.path) / "cache" / "remotes" / digest
        self.transport = transport

    def _read(self, key: str, fresh: bool = False) -> bytes:
        path = self.directory / key
        if not fresh:
            with contextlib.suppress(FileNotFoundError):
                return path.read_bytes()
        data = self.transport.get(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.parent / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
        temp.write_bytes(data)
        os.replace(temp, path)
        return data

    def doc(self, key: str, fresh: bool = False) -> dict:
        """The run document at ``key`` (a ref version), decoded; a RemoteError naming it if damaged.
        ``fresh``: read the remote's bytes even if a copy is cached (gc judges what is there now)."""
        raw = self._read(key, fresh)
        try:
            value = records.decode(raw)
        except (CafstoreError, ValueError) as exc:
            raise RemoteError(
                f"The run ref {key} on the remote {self.transport.url} is damaged ({exc}); it was left as it is."
            ) from exc
        if not isinstance(value, dict) or value.get("format") != 1:
            raise RemoteError(
                f"The run ref {key} on the remote {self.transport.url} is not a cafstore run document of format 1; "
                "it may come from a newer cafstore."
            )
        return value

    def index(self, pack_id: str) -> list:
        """A pack's entries (packs.Entry), from its .idx."""
        return packs.read_index(pack_id, self._read(packs.index_key(pack_id)))


def young(item: Listed, window: float, now: Optional[float] = None) -> bool:
    """Whether ``item`` was written within ``window`` seconds (so gc's grace period still covers it)."""
    return item.mtime >= (now if now is not None else time.time()) - window
