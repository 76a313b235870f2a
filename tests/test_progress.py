"""cafstore.progress: drawn on a terminal only; and the commands that use it stay quiet in a pipe."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from terminal import run_on_a_terminal

from cafstore.progress import LINES, Progress, callback, eta_text, progress, rate_text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_is_drawn_when_the_stream_is_not_a_terminal() -> None:
    out = io.StringIO()
    with progress("job", 10, stream=out, delay=0, interval=0) as bar:
        for _ in range(10):
            bar.advance()
    assert out.getvalue() == ""


def test_plain_renderer_draws_count_percent_rate_and_eta() -> None:
    out = Terminal()
    with Progress("checking", 4, stream=out, delay=0, interval=0, use_rich=False) as bar:
        bar.started -= 2.0  # as if the job had run 2 s: 1 item per second
        bar.advance(2)
        assert out.getvalue().endswith("checking: 2/4 (50%) 1.0/s ETA 2s")
        assert out.getvalue().startswith("\r\x1b[K")
    assert out.getvalue().endswith("\n")  # the last state stays on screen


def test_a_quick_job_prints_nothing_and_lines_mode_prints_whole_lines() -> None:
    out = Terminal()
    with Progress("quick", 5, stream=out, delay=5.0, interval=0, use_rich=False) as bar:
        bar.advance(5)
    assert out.getvalue() == ""
    out = Terminal()
    bar = Progress("[F/1/step] foreach tasks done", 0, mode=LINES, stream=out, delay=0, interval=0)
    bar.interval = 0
    bar.update(0, 3)
    bar.advance()
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[F/1/step] foreach tasks done: 0/3 (0%)" and "\r" not in out.getvalue()
    assert lines[-1].startswith("[F/1/step] foreach tasks done: 1/3 (33%)")


def test_rich_renderer_and_callback() -> None:
    out = Terminal()
    bar = Progress("sending", 2048, unit="B", stream=out, delay=0, interval=0, use_rich=True)
    report = callback(bar)
    report(1024, None)
    report(2048, 2048)
    bar.close()
    assert "sending" in out.getvalue() and "2.0/2.0 KiB" in out.getvalue()


def test_rate_and_eta_texts() -> None:
    assert rate_text(3 * 1024 * 1024, 1.0, "B") == "3.0 MiB/s"
    assert rate_text(0, 1.0, "") == ""
    assert eta_text(1, 4, 10.0) == "ETA 30s" and eta_text(1, 100, 10.0) == "ETA 16m30s"
    assert eta_text(4, 4, 1.0) == ""


def test_fsck_in_a_pipe_prints_no_progress(run_cli, tmp_path: Path) -> None:
    from cafstore.store import Store

    store = Store(tmp_path / "s")
    for i in range(50):
        store.put_artifact(list(range(i)))
    store.close()
    done = run_cli("--store", str(tmp_path / "s"), "fsck")
    assert done.returncode == 0, done.stderr
    assert "checking objects" not in done.stderr and "\r" not in done.stderr + done.stdout


FLOW = textwrap.dedent(
    """\
    import time
    from cafstore import FlowSpec, step

    class TickFlow(FlowSpec):
        @step
        def start(self):
            self.items = list(range(24))
            self.next(self.tick, foreach="items")

        @step
        def tick(self):
            time.sleep(0.2)
            self.next(self.join)

        @step
        def join(self, inputs):
            self.next(self.end)

        @step
        def end(self):
            pass

    if __name__ == "__main__":
        TickFlow()
    """
)


def test_a_foreach_shows_tasks_done_on_a_terminal_only(tmp_path: Path) -> None:
    flow = tmp_path / "tickflow.py"
    flow.write_text(FLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env["CAFSTORE_HOME"] = str(tmp_path / ".cafstore")
    shown = run_on_a_terminal([sys.executable, str(flow), "run", "--max-workers", "2"], tmp_path, env)
    assert "Done!" in shown, shown[-2000:]
    lines = [line for line in shown.splitlines() if "[TickFlow/1/tick] foreach tasks done:" in line]
    assert lines, shown[-2000:]
    assert "/24 (" in lines[0] and "/s" in lines[-1]
    piped = subprocess.run([sys.executable, str(flow), "run"], cwd=str(tmp_path), env=env, capture_output=True)
    assert piped.returncode == 0 and b"foreach tasks done" not in piped.stdout + piped.stderr


BIG_VALUE = textwrap.dedent(
    """
    import os, sys
    from cafstore.store import Store

    store = Store(sys.argv[1])
    oid = store.put_bytes(os.urandom(12 << 20))
    store.close()
    print("stored", oid.short)
    """
)


def test_writing_a_big_value_to_a_local_store_shows_bytes_on_a_terminal_only(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text(BIG_VALUE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env.update(CAFSTORE_HOME=str(tmp_path / ".cafstore"), CAFSTORE_PROGRESS_MIN_BYTES=str(8 << 20))
    env["CAFSTORE_PROGRESS_DELAY"] = "0"  # 12 MiB is written far quicker than the default 1 s
    shown = run_on_a_terminal([sys.executable, "big.py", str(tmp_path / "tty")], tmp_path, env, timeout=60)
    assert "stored " in shown, shown[-2000:]
    short = shown.split("stored ")[1].split()[0]
    assert f"writing {short}" in shown and "12.0 MiB" in shown, shown[-2000:]
    piped = subprocess.run(
        [sys.executable, "big.py", str(tmp_path / "piped")], cwd=str(tmp_path), env=env, capture_output=True, text=True
    )
    assert piped.returncode == 0 and "stored " in piped.stdout, piped.stderr[-2000:]
    assert "writing" not in piped.stdout + piped.stderr
