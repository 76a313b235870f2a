"""Helpers for the read-path reliability tests: a real store made by a real flow, damaged on disk.

Every check runs the real command line (or a fresh interpreter using the
client) in a subprocess, as a user would, so a crash of the process itself
(SIGBUS, a raw traceback) is seen exactly as the user would see it.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

FLOW = Path(__file__).with_name("flows") / "reliable_flow.py"
PAGE = 4096  # LMDB's page size on this platform (the tests check it against the file)

# A client session that reads every artifact of every run, as a notebook would.
READ_ALL = """
import cafstore
cafstore.namespace(None)
for run in cafstore.Flow("ReliableFlow").runs():
    for step in run:
        for task in step:
            for name in task.data:
                getattr(task.data, name)
print("read all")
"""


def env_without_store(extra: Optional[dict] = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env.update(extra or {})
    return env


def flow(
    store: Path, *args: str, prefix: Sequence[str] = (), timeout: float = 120
) -> "subprocess.CompletedProcess[str]":
    """``python reliable_flow.py --store STORE run ARGS`` (``prefix``: a command to wrap it in)."""
    return subprocess.run(
        [*prefix, sys.executable, str(FLOW), "--store", str(store), "run", "--pause", "0", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env_without_store(),
    )


def cli_command(store: Path, *args: str, prefix: Sequence[str] = ()) -> list:
    return [*prefix, sys.executable, "-m", "cafstore.cli.main", "--store", str(store), *args]


def client_command(prefix: Sequence[str] = ()) -> list:
    return [*prefix, sys.executable, "-c", READ_ALL]


def run_all(commands: dict, store: Path, timeout: float = 120) -> dict:
    """Run the named commands at once (the machine has few cores; they mostly wait on imports).

    Returns name -> (exit code, stdout + stderr).
    """
    env = env_without_store({"CAFSTORE_HOME": str(store)})
    procs = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for name, cmd in commands.items()
    }
    return {name: (proc.wait(timeout), proc.communicate()[0]) for name, proc in procs.items()}


def flip_leaf_header(data_file: Path, needle: bytes) -> int:
    """Flip the leaf bit of the first LMDB leaf page holding ``needle``; returns the page number.

    A page header is ``pgno (8) | pad (2) | flags (2) | lower (2) | upper (2)``; leaf pages
    have flag 0x02. One flipped bit, where a bad disk sector or a stray write would put it,
    and one LMDB always notices (a page that is neither leaf nor branch). Flipping other bits
    is not always noticed: LMDB keeps no checksums, and a page taken for a branch sends it to
    whatever page its bytes happen to name, which may hold valid entries (docs/store.md).
    """
    data = bytearray(data_file.read_bytes())
    for page in range(2, len(data) // PAGE):  # pages 0 and 1 are the meta pages
        start = page * PAGE
        if data[start + 10] & 0x02 and needle in data[start : start + PAGE]:
            data[start + 10] ^= 0x02
            data_file.write_bytes(bytes(data))
            return page
    raise AssertionError(f"no leaf page holds {needle!r}")


def _newest_meta(data: bytes) -> int:
    """Offset of ``mm_last_pg`` in the newest of the two meta pages (``mm_txnid`` follows it)."""
    offsets = [page * PAGE + 16 + 4 + 4 + 8 + 8 + 48 * 2 for page in (0, 1)]  # header, magic..mapsize, 2 dbs
    return max(offsets, key=lambda off: struct.unpack_from("<Q", data, off + 8)[0])


def meta_last_page(data_file: Path) -> int:
    """The last page number the newest meta page records (LMDB's ``mm_last_pg``)."""
    data = data_file.read_bytes()
    return struct.unpack_from("<Q", data, _newest_meta(data))[0]


def claim_unwritten_last_page(data_file: Path) -> None:
    """Make the newest meta page claim one more page than the file holds, which nothing references.

    What LMDB leaves when a page it allocated last was freed in the same transaction
    (it never writes such a page): a healthy file that ends before its last page.
    """
    data = bytearray(data_file.read_bytes())
    offset = _newest_meta(data)
    last = struct.unpack_from("<Q", data, offset)[0]
    struct.pack_into("<Q", data, offset, last + 1)
    data_file.write_bytes(bytes(data[: (last + 1) * PAGE]))


def cli(store: Path, *args: str, timeout: float = 120) -> "subprocess.CompletedProcess[str]":
    """``cafstore --store STORE ARGS`` as a user runs it; whatever it says, it is never a traceback."""
    done = subprocess.run(cli_command(store, *args), capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done
