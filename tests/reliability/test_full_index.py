"""A full index says "store is full" the way a full disk under large objects does (issue 12, item 8).

Before: the index hitting a full disk said "Could not commit to the store
index: mdb_txn_commit: No space left on device. Is the disk full?" (and an
LMDB error outside a commit came out raw, through contextlib frames), while a
large object on the same disk said "the disk holding the store is full ...
Nothing was half-written; free some space". Now both are one message, from
``StorageFull.disk_full``. The disk is a real 4 MiB tmpfs (root can mount one
here; elsewhere the test skips).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from store_damage import env_without_store, flow

from cafstore.store import Store, StoreConfig

SAME_WORDS = "the disk holding the store is full (No space left on device). Nothing was half-written; free some space"


@pytest.fixture
def tiny_disk(tmp_path) -> Path:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=4m tmpfs {mount} 2>/dev/null") != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield mount
    finally:
        if os.system(f"umount {mount} 2>/dev/null") != 0:
            os.system(f"umount -l {mount}")  # something still holds it open: detach it anyway


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_under_the_index_gives_the_store_is_full_message(tiny_disk):
    store = tiny_disk / "store"
    ok = flow(store, "--width", "1", "--big", "100")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    filler = _fill(tiny_disk)

    # Small artifacts only (20 kB, below the inline threshold): every byte goes into the index.
    full = flow(store, "--width", "6", "--big", "20000")
    out = full.stdout + full.stderr
    assert full.returncode != 0, out[-3000:]
    assert "store is full" in out and SAME_WORDS in out, out[-3000:]
    assert "lmdb." not in out and "Traceback" not in out, out[-3000:]

    # The store's own API, one ref too big for the index's free pages: StorageFull, same words.
    script = (
        "import sys\n"
        "from cafstore.store import Store\n"
        "from cafstore.exception import StorageFull\n"
        "try:\n"
        "    Store(sys.argv[1]).set_ref('big', 'x' * 1_000_000)\n"
        "except StorageFull as exc:\n"
        "    print(exc)\n"
    )
    api = subprocess.run(
        [sys.executable, "-c", script, str(store)], capture_output=True, text=True, timeout=60, env=env_without_store()
    )
    assert api.returncode == 0, api.stderr[-3000:]
    assert "Could not commit to the store index" in api.stdout and SAME_WORDS in api.stdout, api.stdout

    filler.unlink()  # with room again, the store is whole and usable
    again = Store(store, StoreConfig(durable=False))
    try:
        assert again.fsck().ok, again.fsck().problems[:5]
    finally:
        again.close()  # an open index keeps the mount busy
    assert flow(store, "--width", "1", "--big", "100").returncode == 0
