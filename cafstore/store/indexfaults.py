"""What can go wrong under the LMDB index, said in the store's own words.

LMDB reports trouble as its own exceptions (``lmdb.CorruptedError``,
``lmdb.DiskError``, ...) from wherever a transaction happens to touch the bad
page, and a data file shorter than its pages says is worse: LMDB maps the
file, and touching a page past its end kills the process with SIGBUS, with
no message at all. This module is the boundary index.py puts around LMDB:

- ``check_size`` runs right after the environment is opened, before any
  data page is touched: a file shorter than its last page is probed in a
  child process (which may die in our place) and refused as damaged;
- ``translate`` maps LMDB's exceptions to the store's (``IndexDamaged``,
  ``StorageFull``, ``StoreReadOnly``), each one paragraph naming the file
  and what to do; errors it does not know stay LMDB's (a bug, not a fault);
- ``writable`` decides whether the index can be opened for writing at all,
  so a read-only store (a read-only mount, or files the user may not write)
  is still readable.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import lmdb

from cafstore.exception import IndexDamaged, StorageFull, StoreError, StoreReadOnly

DATA_FILE = "data.mdb"
# LMDB's ways of saying that the bytes of the file are not a valid index.
_DAMAGE = (
    lmdb.CorruptedError,
    lmdb.PageNotFoundError,
    lmdb.InvalidError,
    lmdb.VersionMismatchError,
    lmdb.IncompatibleError,
)
_DISK_FULL_TEXT = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))
_NEARLY_FULL = 1 << 20  # bytes free under which a short write is taken for a full disk
_READ_ONLY_TEXT = (os.strerror(errno.EROFS), os.strerror(errno.EACCES), os.strerror(errno.EPERM))


def damaged(path: Path, detail: str) -> IndexDamaged:
    """The one message for an index that cannot be read, whatever LMDB or the size check found."""
    return IndexDamaged(
        f"The store index {path / DATA_FILE} is damaged ({detail}), so this command stopped before "
        "reading or changing anything that depends on it. The large objects under objects/ are not "
        "affected. Copy the whole store directory somewhere safe first, then restore index/ from a "
        'backup or rebuild it as docs/reliability.md ("A damaged index") describes.'
    )


def read_only(path: Path, detail: str) -> StoreReadOnly:
    """The one message for a write to a store this process may only read."""
    return StoreReadOnly(
        f"The store at {path.parent} is read-only here ({detail}): this command needs to write to it. "
        "Reading commands (log, ls, logs, dump, fsck, gc --dry-run) and the client still work; to write, "
        "run as a user who may write the store's files, or from a mount that is not read-only."
    )


def translate(exc: BaseException, path: Path, action: str) -> Optional[StoreError]:
    """The store error for LMDB's ``exc`` raised while ``action`` (e.g. "commit to"), or None.

    ``path``: the index directory. None means "not a fault of the store" (a
    closed transaction after a remap, a bug): the caller re-raises the original.
    """
    if not isinstance(exc, lmdb.Error):
        return None
    text = str(exc)
    # The store never goes on using a transaction after an LMDB error (index.py aborts it), so
    # LMDB calling one invalid (MDB_BAD_TXN) means a damaged page underneath: a flipped byte in
    # a leaf's header does exactly that to the first read of a fresh transaction.
    if isinstance(exc, _DAMAGE) or isinstance(exc, lmdb.BadTxnError):
        return damaged(path, f"LMDB: {text}")
    if isinstance(exc, lmdb.DiskError) or any(t in text for t in _DISK_FULL_TEXT) or _short_write(text, path):
        reason = os.strerror(errno.EDQUOT if os.strerror(errno.EDQUOT) in text else errno.ENOSPC)
        return StorageFull.disk_full(f"{action} the store index {path / DATA_FILE}", reason)
    if isinstance(exc, lmdb.ReadonlyError) or any(t in text for t in _READ_ONLY_TEXT):
        return read_only(path, text)
    if isinstance(exc, lmdb.PanicError):
        return StoreError(
            f"The store index {path / DATA_FILE} stopped after a failed write in this process (LMDB: {text}); "
            "nothing after the failure was committed. Run the command again; if it fails the same way, the "
            'index is damaged: see docs/reliability.md ("A damaged index").'
        )
    return None


def _short_write(text: str, path: Path) -> bool:
    """Whether an EIO from LMDB is a full disk: LMDB reports a write the disk cut short as
    EIO, not ENOSPC, so the disk's free space decides."""
    if os.strerror(errno.EIO) not in text:
        return False
    try:
        stats = os.statvfs(path)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < _NEARLY_FULL


def writable(path: Path) -> bool:
    """Whether this process may write the index at ``path`` (a directory that may not exist yet)."""
    probe = path if path.exists() else path.parent
    if not os.access(probe, os.W_OK):
        return False
    data = path / DATA_FILE
    return not data.exists() or os.access(data, os.W_OK)


def check_size(env: Any, path: Path) -> None:
    """Refuse a data file shorter than the pages its newest meta page says it has.

    Runs before any data page is touched: LMDB maps the whole file, and a
    read of a page past its end is a SIGBUS. The meta page is read first and
    the file's size after it: a file only grows, so a commit by another
    process in between cannot make a healthy file look short. A short file
    is not always damaged (LMDB does not write pages it freed in the same
    transaction, and one of those can be the last), so the verdict on a short
    file comes from a child process that reads every entry and may die in
    our place.
    """
    need = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    try:
        size = (path / DATA_FILE).stat().st_size
    except FileNotFoundError:
        return
    if size >= need:
        return
    failure = probe(path)
    if failure is not None:
        raise damaged(path, f"the file has {size} bytes but its pages need {need}; reading it {failure}")


_PROBE = """
import sys, lmdb
env = lmdb.open(sys.argv[1], readonly=True, lock=False, max_dbs=64)
with env.begin(buffers=True) as txn:
    names = [bytes(k) for k, _ in txn.cursor()]
for name in names:
    db = env.open_db(name, create=False)
    with env.begin(db=db, buffers=True) as txn:
        for key, value in txn.cursor():
            bytes(value[-1:])
"""


def probe(path: Path) -> Optional[str]:
    """Read every entry of the index at ``path`` in a child process; None if it could, else what went wrong."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not be checked ({exc})"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        return f"killed the reading process with signal {-done.returncode}"
    lines = done.stderr.strip().splitlines()
    last = lines[-1].removeprefix("lmdb.") if lines else f"exit {done.returncode}"  # the error, not the module
    return f"failed: {last}"
