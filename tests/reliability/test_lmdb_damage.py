"""A damaged LMDB index (truncated, a flipped page byte): one clear paragraph from every command.

Issue 12, item 7. Before: a truncated ``index/data.mdb`` killed commands
with SIGBUS (exit 135, no message at all) or let them run on zeros (a
``struct.error`` traceback from fsck and gc), and a flipped byte in a leaf
page gave a raw ``lmdb.BadTxnError`` traceback. Now every command -- the
CLI's, a flow run, the client -- says the index is damaged, names the file,
and exits 1.

An emptied (0-byte) index is another fault (issue 12, item 1): LMDB takes it
for a new store, and this check must not get in the way of that handling.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from store_damage import (
    FLOW,
    PAGE,
    claim_unwritten_last_page,
    cli_command,
    client_command,
    flip_leaf_header,
    flow,
    meta_last_page,
    run_all,
)

from cafstore.store import Store


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """One finished run: a foreach of two branches, each with a 40 kB artifact (a file) and small ones."""
    store = tmp_path_factory.mktemp("pristine") / "store"
    done = flow(store, "--width", "2", "--big", "40000")
    assert done.returncode == 0, done.stdout + done.stderr
    data = store / "index" / "data.mdb"
    assert data.stat().st_size >= 8 * PAGE and Store(store).index.env.stat()["psize"] == PAGE
    return store


def _copy(pristine: Path, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    shutil.copytree(pristine, store)
    return store


def _every_command(store: Path) -> dict:
    return {
        "log": cli_command(store, "log"),
        "ls": cli_command(store, "ls", "ReliableFlow/1"),
        "fsck": cli_command(store, "fsck"),
        "gc --dry-run": cli_command(store, "gc", "--dry-run"),
        "dump": cli_command(store, "dump", "ReliableFlow/1/join"),
        "logs": cli_command(store, "logs", "ReliableFlow/1/end"),
        "client": client_command(),
    }


def _assert_damage_reported(results: dict, data_file: Path) -> None:
    for name, (code, out) in results.items():
        assert code == 1, f"{name}: exit {code} (a negative code is a signal: {code == -7 and 'SIGBUS'})\n{out}"
        assert "is damaged" in out and str(data_file) in out, f"{name}:\n{out}"
        if name == "client":  # a Python user sees a traceback ending in the store's exception
            assert out.rstrip().splitlines()[-1].startswith("cafstore.exception.IndexDamaged: "), out
        else:
            assert "Traceback" not in out and "lmdb." not in out.replace("data.mdb", ""), f"{name}:\n{out}"


def test_a_truncated_index_is_refused_by_every_command(pristine, tmp_path):
    store = _copy(pristine, tmp_path)
    data = store / "index" / "data.mdb"
    with open(data, "r+b") as handle:
        handle.truncate(data.stat().st_size // 2)
    _assert_damage_reported(run_all(_every_command(store), store), data)
    _assert_damage_reported(run_all({"flow run": flow_command(store)}, store), data)


@pytest.mark.parametrize("size", [3 * PAGE + 100, 2 * PAGE - 1, PAGE, 10], ids=lambda n: f"{n}-bytes")
def test_an_index_truncated_to_any_size_is_refused(pristine, tmp_path, size):
    """Sizes that fail differently inside LMDB: data pages missing (SIGBUS before), part of a
    meta page missing, one meta page only, a few bytes (MDB_INVALID)."""
    store = _copy(pristine, tmp_path)
    data = store / "index" / "data.mdb"
    with open(data, "r+b") as handle:
        handle.truncate(size)
    _assert_damage_reported(run_all({"log": cli_command(store, "log"), "client": client_command()}, store), data)


def test_a_flipped_page_byte_is_refused_by_every_command(pristine, tmp_path):
    store = _copy(pristine, tmp_path)
    data = store / "index" / "data.mdb"
    flip_leaf_header(data, b"runs/ReliableFlow")
    _assert_damage_reported(run_all(_every_command(store), store), data)
    # Then a writer, and a reader after it: the writer must not have "healed" the page away.
    _assert_damage_reported(run_all({"flow run": flow_command(store)}, store), data)
    _assert_damage_reported(run_all({"log": cli_command(store, "log")}, store), data)


def test_a_healthy_index_whose_last_pages_were_never_written_still_opens(pristine, tmp_path):
    """LMDB does not write pages freed in the transaction that allocated them; a file can end
    before its last page without being damaged. The size check must not refuse such a file."""
    store = _copy(pristine, tmp_path)
    data = store / "index" / "data.mdb"
    claim_unwritten_last_page(data)
    assert data.stat().st_size == meta_last_page(data) * PAGE  # one page short
    results = run_all({"log": cli_command(store, "log"), "fsck": cli_command(store, "fsck")}, store)
    assert results["log"][0] == 0 and "ReliableFlow/1" in results["log"][1], results
    assert results["fsck"][0] == 0, results


def test_an_emptied_index_is_not_called_damaged(pristine, tmp_path):
    """0 bytes is what LMDB calls a new environment; item 1 of issue 12 decides what that means."""
    store = _copy(pristine, tmp_path)
    (store / "index" / "data.mdb").write_bytes(b"")
    results = run_all({"log": cli_command(store, "log")}, store)
    assert "store index is damaged" not in results["log"][1], results


def flow_command(store: Path) -> list:
    return [sys.executable, str(FLOW), "--store", str(store), "run", "--pause", "0", "--width", "1"]
