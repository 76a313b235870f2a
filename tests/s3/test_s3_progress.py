"""A big object moving to or from S3 shows a bytes progress bar on a terminal, and nothing in a pipe."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from s3server import init_s3_store
from terminal import run_on_a_terminal

# Stores 12 MiB (three 5 MiB parts: a multipart upload), drops the local read cache, reads them back
# (three ranged GETs), and checks the bytes. Thresholds lowered by the environment: see env below.
SCRIPT = textwrap.dedent(
    """
    import os, shutil, sys
    from pathlib import Path
    from cafstore.store import Store

    root = Path(sys.argv[1])
    data = os.urandom(12 << 20)
    store = Store(root)
    oid = store.put_bytes(data)
    store.close()
    shutil.rmtree(root / "cache" / "s3")
    store = Store(root)
    assert bytes(store.get_bytes(oid)) == data
    store.close()
    print("stored and read", oid.short)
    """
)


def _run(tmp_path: Path, s3_options: dict, name: str, on_a_terminal: bool, min_bytes: int = 8 << 20) -> str:
    """The script on a new store (its own prefix, so the object is really sent); what it printed."""
    options = dict(s3_options, prefix=f"{s3_options['prefix']}-{name}", multipart_threshold=5 << 20, part_size=5 << 20)
    root = init_s3_store(tmp_path / name, options)
    (tmp_path / "big.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env.update(CAFSTORE_HOME=str(tmp_path / ".cafstore"), CAFSTORE_PROGRESS_MIN_BYTES=str(min_bytes))
    env["CAFSTORE_PROGRESS_DELAY"] = "0"  # a local server moves 12 MiB far quicker than the default 1 s
    args = [sys.executable, "big.py", str(root)]
    if on_a_terminal:
        return run_on_a_terminal(args, tmp_path, env, timeout=60)
    done = subprocess.run(args, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_storing_and_reading_a_big_object_shows_bytes_on_a_terminal_only(tmp_path: Path, s3_options: dict) -> None:
    shown = _run(tmp_path, s3_options, "tty", on_a_terminal=True)
    assert "stored and read" in shown, shown[-2000:]
    short = shown.split("stored and read ")[1].split()[0]
    assert f"uploading {short}" in shown and f"downloading {short}" in shown, shown[-2000:]
    assert "12.0 MiB" in shown, shown[-2000:]  # "12.0 MiB/12.0 MiB" plain, "12.0/12.0 MiB" rich

    piped = _run(tmp_path, s3_options, "piped", on_a_terminal=False)
    assert "stored and read" in piped and "uploading" not in piped and "downloading" not in piped, piped


def test_an_object_below_the_size_threshold_shows_nothing_even_on_a_terminal(tmp_path: Path, s3_options: dict) -> None:
    shown = _run(tmp_path, s3_options, "small", on_a_terminal=True, min_bytes=16 << 20)
    assert "stored and read" in shown, shown[-2000:]
    assert "uploading" not in shown and "downloading" not in shown, shown[-2000:]
