"""Capturing a task's stdout and stderr, line by line, as they are printed.

The task's file descriptors 1 and 2 are pointed at pipes (``dup2``), so
output from C extensions and subprocesses is caught as well as Python's.
A reader thread takes each line as it arrives, stamps it with the time it
was read (that is, when it was printed, not when the task ended), echoes it
to the terminal with the task's pathspec and pid, and keeps it for the
store.

Stored format (docs/datamodel.md): one line per printed line,
``<UTC timestamp, ISO 8601 with microseconds and Z> <text>``.
"""

from __future__ import annotations

import _thread
import os
import select
import selectors
import sys
import time
from typing import Dict, List, Optional, Tuple

STAMP_WIDTH = 27  # len("2024-01-02T03:04:05.678901Z")


def local_stamp(now: Optional[float] = None) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` in local time: the prefix of every echoed line."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


def utc_stamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1_000_000):06d}Z"


def strip_stamps(stored: bytes) -> bytes:
    """The text of stored log bytes without the timestamps."""
    return b"".join(line[STAMP_WIDTH + 1 :] for line in stored.splitlines(keepends=True))


class Capture:
    """fd-level capture of stdout and stderr with live, prefixed echo.

    ``start()`` redirects fds 1 and 2; ``stop()`` restores them and returns
    the stored bytes of each stream.  Lines go to the original fds prefixed
    ``<local time> [<prefix>] ``.

    The reader thread and ``stop()`` share one lock: the thread handles what
    arrives while the step runs; ``stop()`` takes the lock, reads what is left
    in the pipes itself and tells the thread to go.  So stopping never waits
    for the thread to wake up (a millisecond or more on a busy virtual
    machine), nor for a subprocess the step left running with the pipe open.
    """

    def __init__(self, prefix: str, echo: bool = True) -> None:
        self.prefix = prefix
        self.echo = echo
        self._saved: Dict[int, int] = {}
        self._kept: Dict[int, List[bytes]] = {1: [], 2: []}
        self._readers: Dict[int, int] = {}  # pipe read end -> 1 or 2
        self._partial: Dict[int, Tuple[float, bytes]] = {}
        self._lock = _thread.allocate_lock()
        self._closed = False
        self._wake: Tuple[int, int] = (-1, -1)

    def start(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            _flush(stream)
        for fd in (1, 2):
            read_end, write_end = os.pipe()
            self._saved[fd] = os.dup(fd)
            os.dup2(write_end, fd)
            os.close(write_end)
            self._readers[read_end] = fd
        # Python buffers stdout fully when it is not a terminal: make each print reach the pipe
        # at once, so the timestamp is the time of the print.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
            except (AttributeError, ValueError):
                pass
        self._wake = os.pipe()
        # A bare thread: threading.Thread.start() waits until the thread runs, which costs
        # milliseconds of wake-up latency on a busy (virtual) machine; nothing needs that wait.
        _thread.start_new_thread(self._pump, ())

    def _pump(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            with self._lock:
                if self._closed:  # the step was over before this thread got to run
                    return
                for read_end, fd in self._readers.items():
                    selector.register(read_end, selectors.EVENT_READ, fd)
                selector.register(self._wake[0], selectors.EVENT_READ, None)
            while True:
                events = selector.select()
                with self._lock:
                    if self._closed:
                        return
                    for key, _ in events:
                        if key.data is not None and not self._read(key.fd, key.data):
                            selector.unregister(key.fd)
        finally:
            selector.close()
            os.close(self._wake[0])

    def _read(self, read_end: int, fd: int) -> bool:
        """Take one chunk from a pipe (the lock is held); False at end of file."""
        try:
            chunk = os.read(read_end, 65536)
        except BlockingIOError:
            return True
        now = time.time()
        if not chunk:
            if fd in self._partial:
                self._emit(fd, *self._partial.pop(fd))  # an unterminated last line
            return False
        started, pending = self._partial.pop(fd, (now, b""))
        lines = (pending + chunk).split(b"\n")
        for i, line in enumerate(lines[:-1]):
            self._emit(fd, started if i == 0 else now, line)
        if lines[-1]:
            self._partial[fd] = (started if len(lines) == 1 else now, lines[-1])
        return True

    def _emit(self, fd: int, when: float, line: bytes) -> None:
        self._kept[fd].append(utc_stamp(when).encode() + b" " + line + b"\n")
        if self.echo:
            text = f"{local_stamp(when)} [{self.prefix}] ".encode() + line + b"\n"
            try:
                os.write(self._saved[fd], text)
            except OSError:
                self.echo = False  # the terminal went away: keep capturing

    def stop(self) -> Tuple[bytes, bytes]:
        """Restore fds 1 and 2 and return (stdout, stderr) as stored bytes."""
        for stream in (sys.stdout, sys.stderr):
            _flush(stream)
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)  # closes the pipe's write end held at fd: all output is in the pipe
        with self._lock:
            self._closed = True
            for read_end, fd in self._readers.items():
                os.set_blocking(read_end, False)  # a subprocess left running may hold the pipe open
                while self._read(read_end, fd):
                    if not _readable(read_end):
                        break
                if fd in self._partial:
                    self._emit(fd, *self._partial.pop(fd))
                os.close(read_end)
        try:
            os.write(self._wake[1], b"x")  # the thread may exit now; nobody waits for it
        except OSError:
            pass  # it already has
        os.close(self._wake[1])
        out, err = b"".join(self._kept[1]), b"".join(self._kept[2])
        for saved in self._saved.values():
            os.close(saved)
        self._saved.clear()
        return out, err


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def _flush(stream: object) -> None:
    try:
        stream.flush()  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        pass
