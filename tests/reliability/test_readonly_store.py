"""A read-only store can still be read; writing to it says so (issue 12, item 11).

Before: every command on a store its user may not write failed at once with
"Cannot open the store index ...: Permission denied" (or "Read-only file
system"): LMDB was always opened for writing. Now the index of such a store
is opened read-only, so ``log``, ``ls``, ``logs``, ``dump``, ``fsck`` and the
client work, and commands that write exit 1 with "store is read-only".

Both ways a store becomes read-only are made for real: a read-only mount (a
tmpfs remounted ``ro``; even root cannot write there), and files the user
may not write (``chmod -R a-w``, with the commands run without the
capability that lets root ignore permissions). Each skips where it cannot be
set up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from store_damage import cli_command, client_command, env_without_store, flow

NO_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("finished") / "store"
    done = flow(store, "--width", "2", "--big", "40000")
    assert done.returncode == 0, done.stdout + done.stderr
    return store


@pytest.fixture(params=["read-only mount", "no write permission"])
def readonly(request, finished, tmp_path) -> Iterator[tuple]:
    """(store path, command prefix) of a copy of ``finished`` this process cannot write."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a file system or drop capabilities")
    if request.param == "read-only mount":
        mount = tmp_path / "ro"
        mount.mkdir()
        if os.system(f"mount -t tmpfs -o size=16m tmpfs {mount} 2>/dev/null") != 0:
            pytest.skip("cannot mount a tmpfs here")
        try:
            shutil.copytree(finished, mount / "store")
            assert os.system(f"mount -o remount,ro {mount}") == 0
            yield mount / "store", []
        finally:
            os.system(f"umount {mount}")
        return
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    store = tmp_path / "store"
    shutil.copytree(finished, store)
    subprocess.run(["chmod", "-R", "a-w", str(store)], check=True)
    probe = subprocess.run([*NO_OVERRIDE, "touch", str(store / "x")], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("dropping CAP_DAC_OVERRIDE does not stop root writing here")
    yield store, NO_OVERRIDE


def _run(commands: dict, prefix: list, store: Path) -> dict:
    env = env_without_store({"CAFSTORE_HOME": str(store)})
    procs = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name, cmd in commands.items()
    }
    return {name: (p.wait(120), *p.communicate()) for name, p in procs.items()}


def test_a_read_only_store_can_be_read(readonly):
    store, prefix = readonly
    results = _run(
        {
            "log": cli_command(store, "log", prefix=prefix),
            "ls": cli_command(store, "ls", "ReliableFlow/1/work", prefix=prefix),
            "logs": cli_command(store, "logs", "ReliableFlow/1/end", prefix=prefix),
            "dump": cli_command(store, "dump", "ReliableFlow/1/join", prefix=prefix),
            "fsck": cli_command(store, "fsck", prefix=prefix),
            "gc --dry-run": cli_command(store, "gc", "--dry-run", prefix=prefix),
            "client": client_command(prefix=prefix),
        },
        prefix,
        store,
    )
    for name, (code, out, err) in results.items():
        assert code == 0, f"{name}: exit {code}\n{out}\n{err}"
    assert "ReliableFlow/1" in results["log"][1]
    assert "total 10" in results["logs"][1]
    assert "total" in results["dump"][1] and "sizes" in results["dump"][1]
    assert "read all" in results["client"][1]


def test_writing_to_a_read_only_store_says_it_is_read_only(readonly):
    store, prefix = readonly
    results = _run(
        {
            "tag add": cli_command(store, "tag", "add", "ReliableFlow/1", "x", prefix=prefix),
            "pin": cli_command(store, "pin", "ReliableFlow/1", prefix=prefix),
            "rm": cli_command(store, "rm", "--yes", "ReliableFlow/1", prefix=prefix),
            "fsck --repair": cli_command(store, "fsck", "--repair", prefix=prefix),
            "flow run": [*prefix, *flow_command(store)],
        },
        prefix,
        store,
    )
    for name, (code, out, err) in results.items():
        text = out + err
        assert code == 1, f"{name}: exit {code}\n{text}"
        assert "store is read-only" in text and str(store) in text, f"{name}:\n{text}"
        assert "Traceback" not in text, f"{name}:\n{text}"


def flow_command(store: Path) -> list:
    import sys

    from store_damage import FLOW

    return [sys.executable, str(FLOW), "--store", str(store), "run", "--pause", "0", "--width", "1"]


def test_a_store_from_before_ids_can_be_read_read_only(finished, tmp_path):
    """A store written before the index had its ``meta`` table and store id: a reader who may not
    write it cannot add either, and reads it as it is (a later writer adopts it)."""
    import json

    import lmdb

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop the capability that lets root ignore permissions")
    store = tmp_path / "store"
    shutil.copytree(finished, store)
    env = lmdb.open(str(store / "index"), max_dbs=8)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"meta", txn=txn), delete=True)
    env.close()
    settings = json.loads((store / "store.json").read_text())
    settings.pop("id")
    (store / "store.json").write_text(json.dumps(settings))
    subprocess.run(["chmod", "-R", "a-w", str(store)], check=True)
    results = _run(
        {
            "log": cli_command(store, "log", prefix=NO_OVERRIDE),
            "fsck": cli_command(store, "fsck", prefix=NO_OVERRIDE),
            "client": client_command(prefix=NO_OVERRIDE),
        },
        NO_OVERRIDE,
        store,
    )
    for name, (code, out, err) in results.items():
        assert code == 0, f"{name}: exit {code}\n{out}\n{err}"
    assert "ReliableFlow/1" in results["log"][1]
    assert "read all" in results["client"][1]
    subprocess.run(["chmod", "-R", "u+w", str(store)], check=True)
    adopted = subprocess.run(cli_command(store, "fsck"), capture_output=True, text=True, env=env_without_store({}))
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert "id" in json.loads((store / "store.json").read_text())
