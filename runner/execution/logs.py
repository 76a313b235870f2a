"""Capturing a task's stdout and stderr, line by line, as they are printed.

The task's file descriptors 1 and 2 are pointed at pipes (``dup2``), so
output from C extensions and subprocesses is caught as well as Python's.
A reader thread takes each line as it arrives, stamps it with the time it
was read (that is, when it was printed, not when the task ended), echoes it
to the terminal with the task's pathspec and pid, and keeps it for the
store.

Stored format (docs/datamodel.md): one line per printed line,
``<UTC timestamp, ISO 8601 with microseconds and Z> <text>``.

**Output outlives the task.**  A task that dies without reporting
(``os._exit`` in the step, a segfault, a kill after ``@timeout``) takes the
lines it kept in memory with it.  So a local executor makes the pipes itself
and a *journal* (:class:`Channels`): the task appends every chunk it reads
from the pipes to the journal (an in-memory file) as it reads it, and the
executor, which holds the journal and the pipes' read ends too, rebuilds the
dead task's output from the journal plus whatever was still in the pipes
(:func:`recover`).  While capturing, ``sys.stdout`` and ``sys.stderr`` write
straight to the fds (as under ``python -u``), so nothing printed waits in
a Python buffer that ``os._exit`` or a crash would discard.
"""

from __future__ import annotations

import _thread
import io
import os
import select
import selectors
import struct
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

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


_JOURNAL_FRAME = struct.Struct(">BdI")  # stream (1 or 2), time read, length; then the chunk
_STOPPED = 0  # a journal frame's stream: the capture stopped, every line above was stored and echoed
_ECHOED = 3  # a journal frame's stream: every complete line above was echoed


class Channels:
    """The pipes a task's fds 1 and 2 write into and its journal, made by the executor before the task starts.

    Plain file descriptor numbers, so a spawned interpreter gets them through
    ``pass_fds``.  The executor keeps ``out_read``, ``err_read`` and
    ``journal`` open until the attempt is over (see :func:`recover`) and
    closes its copies of the write ends once the task process has started
    (:meth:`started`).
    """

    def __init__(self, out_read: int, out_write: int, err_read: int, err_write: int, journal: int) -> None:
        self.out_read, self.out_write = out_read, out_write
        self.err_read, self.err_write = err_read, err_write
        self.journal = journal

    @classmethod
    def open(cls) -> "Channels":
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        return cls(out_read, out_write, err_read, err_write, _memory_file())

    @property
    def fds(self) -> Tuple[int, ...]:
        return (self.out_read, self.out_write, self.err_read, self.err_write, self.journal)

    def started(self) -> None:
        """In the executor, once the task process has its copies: drop ours of the write ends."""
        for fd in (self.out_write, self.err_write):
            os.close(fd)
        self.out_write = self.err_write = -1

    def close(self) -> None:
        for fd in self.fds:
            if fd >= 0:
                os.close(fd)
        self.out_read = self.out_write = self.err_read = self.err_write = self.journal = -1


def crash_note(error: Dict[str, Any]) -> bytes:
    """The stamped stderr line that says what ended a task whose process died without a result.

    Metaflow's runtime adds "Task failed with a segmentation fault." to such a
    task's stderr; this says the same, and names any other signal or the exit
    status, so ``logs`` alone tells why the task's output stops where it does.
    """
    if not error.get("lost"):
        return b""
    sig, code = error.get("signal"), error.get("exit_code")
    if sig is not None:
        name = _signal_name(int(sig))
        if name == "SIGSEGV":
            text = f"Task failed with a segmentation fault (killed by signal {sig}, {name})."
        else:
            text = f"Task failed: its process was killed by signal {sig} ({name})."
    elif code is not None:
        text = f"Task failed: its process exited with status {code} without reporting a result."
    else:
        text = f"Task failed: {error.get('message') or 'its process died without reporting a result'}"
    return f"{utc_stamp(time.time())} {text}\n".encode("utf-8", "replace")


def _signal_name(sig: int) -> str:
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _memory_file() -> int:
    """A file descriptor of an anonymous file: in memory where the system offers it (Linux memfd)."""
    if hasattr(os, "memfd_create"):
        try:
            return os.memfd_create("cafstore-task-output")
        except OSError:
            pass  # e.g. a seccomp filter: an unlinked temp file does the same job
    with tempfile.TemporaryFile() as handle:
        return os.dup(handle.fileno())


def recover(channels: Channels, prefix: str, echo: bool = True) -> Tuple[bytes, bytes]:
    """The stored (stdout, stderr) of a task that died, rebuilt in the executor from its journal and pipes.

    Lines the task had read were echoed by the task itself; what it had not
    (the rest of the pipes, a last line without its newline) is echoed here
    to this process's fds 1 and 2, as the task would have.
    """
    lines = Capture(prefix, echo=False)
    lines._echo_to = {1: 1, 2: 2}
    lines._unechoed = []
    for fd, when, chunk in _journal_chunks(channels.journal):
        if fd == _STOPPED:  # the task flushed its last lines itself (it died later, e.g. committing)
            for stream in list(lines._partial):
                lines._emit(stream, *lines._partial.pop(stream))
            lines._unechoed.clear()
        elif fd == _ECHOED:
            lines._unechoed.clear()
        else:
            lines._take(fd, chunk, when)
    lines.echo = echo
    for fd, when, line in lines._unechoed if echo else ():  # kept by the task, which died before echoing them
        lines._echo(fd, when, line)
    lines._unechoed = None
    for read_end, fd in ((channels.out_read, 1), (channels.err_read, 2)):
        os.set_blocking(read_end, False)  # a process the step started may still hold the pipe
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            lines._take(fd, chunk, time.time())
    for fd in (1, 2):
        if fd in lines._partial:
            lines._emit(fd, *lines._partial.pop(fd))
    return b"".join(lines._kept[1]), b"".join(lines._kept[2])


def _journal_chunks(fd: int) -> Iterator[Tuple[int, float, bytes]]:
    data = b""
    size = os.fstat(fd).st_size
    while len(data) < size:
        piece = os.pread(fd, size - len(data), len(data))
        if not piece:
            break
        data += piece
    offset = 0
    while offset + _JOURNAL_FRAME.size <= len(data):
        stream, when, length = _JOURNAL_FRAME.unpack_from(data, offset)
        offset += _JOURNAL_FRAME.size
        chunk = data[offset : offset + length]  # a frame cut short by the task's death: keep what is there
        offset += length
        if stream in (1, 2, _STOPPED, _ECHOED):
            yield stream, when, chunk


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

    def __init__(self, prefix: str, echo: bool = True, channels: Optional[Channels] = None) -> None:
        """``channels``: pipes and a journal made by the executor (else the capture makes its own pipes
        and keeps no journal: a task that dies then loses what it printed)."""
        self.prefix = prefix
        self.echo = echo
        self.channels = channels
        self._journal = channels.journal if channels is not None else -1
        self._journaled = False
        self._unechoed: Optional[List[Tuple[int, float, bytes]]] = None  # recover(): lines not echoed yet
        self._saved: Dict[int, int] = {}
        self._echo_to: Dict[int, int] = self._saved  # where echoed lines go: the fds 1 and 2 saved at start
        self._streams: Tuple[Any, Any] = (None, None)
        self._kept: Dict[int, List[bytes]] = {1: [], 2: []}
        self._readers: Dict[int, int] = {}  # pipe read end -> 1 or 2
        self._partial: Dict[int, Tuple[float, bytes]] = {}
        self._lock = _thread.allocate_lock()
        self._closed = False
        self._wake: Tuple[int, int] = (-1, -1)

    def start(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            _flush(stream)
        given = self.channels
        for fd in (1, 2):
            if given is not None:
                read_end, write_end = (
                    (given.out_read, given.out_write) if fd == 1 else (given.err_read, given.err_write)
                )
            else:
                read_end, write_end = os.pipe()
            self._saved[fd] = os.dup(fd)
            os.dup2(write_end, fd)
            os.close(write_end)
            self._readers[read_end] = fd
        # Python buffers stdout fully when it is not a terminal: make each print reach the pipe
        # at once, so the timestamp is the time of the print (and objects someone kept a reference
        # to flush each line), and give the step streams with no buffer at all, so nothing it
        # printed is lost if the process dies.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
            except (AttributeError, ValueError):
                pass
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = unbuffered_streams()
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
        if self._journal < 0:
            self._take(fd, chunk, now)
            return True
        # Kept before echoed: if the task dies in between, the executor echoes what the mark does not cover.
        self._journal_write(_JOURNAL_FRAME.pack(fd, now, len(chunk)) + chunk)
        lines = len(self._kept[fd])
        self._take(fd, chunk, now)
        if self.echo and len(self._kept[fd]) > lines:
            self._journal_write(_JOURNAL_FRAME.pack(_ECHOED, now, 0))
        return True

    def _journal_write(self, frame: bytes) -> None:
        try:
            os.write(self._journal, frame)
            self._journaled = True
        except OSError:
            self._journal = -1  # no memory left for the journal: capturing goes on without it

    def _take(self, fd: int, chunk: bytes, now: float) -> None:
        """The lines a chunk completes, stamped with the time their first byte was read."""
        started, pending = self._partial.pop(fd, (now, b""))
        lines = (pending + chunk).split(b"\n")
        for i, line in enumerate(lines[:-1]):
            self._emit(fd, started if i == 0 else now, line)
        if lines[-1]:
            self._partial[fd] = (started if len(lines) == 1 else now, lines[-1])

    def _emit(self, fd: int, when: float, line: bytes) -> None:
        self._kept[fd].append(utc_stamp(when).encode() + b" " + line + b"\n")
        if self._unechoed is not None:
            self._unechoed.append((fd, when, line))
        if self.echo:
            self._echo(fd, when, line)

    def _echo(self, fd: int, when: float, line: bytes) -> None:
        text = f"{local_stamp(when)} [{self.prefix}] ".encode() + line + b"\n"
        try:
            os.write(self._echo_to[fd], text)
        except OSError:
            self.echo = False  # the terminal went away: keep capturing

    def stop(self) -> Tuple[bytes, bytes]:
        """Restore fds 1 and 2 and return (stdout, stderr) as stored bytes."""
        for stream in (sys.stdout, sys.stderr):
            _flush(stream)
        if self._streams[0] is not None:
            sys.stdout, sys.stderr = self._streams
            self._streams = (None, None)
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
            if self._journaled:
                self._journal_write(_JOURNAL_FRAME.pack(_STOPPED, time.time(), 0))
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


_UNBUFFERED: Optional[Tuple[Any, Any]] = None


def unbuffered_streams() -> Tuple[Any, Any]:
    """Text streams on fds 1 and 2 that buffer nothing, made once: a forked task inherits them ready-made."""
    global _UNBUFFERED
    if _UNBUFFERED is None:
        _UNBUFFERED = (_unbuffered(1, sys.stdout), _unbuffered(2, sys.stderr))
    return _UNBUFFERED


def _unbuffered(fd: int, like: Any) -> Any:
    """A text stream on ``fd`` that hands every write to the OS at once (``python -u``), encoding as ``like``."""
    try:
        encoding, errors = like.encoding, like.errors
    except AttributeError:
        encoding, errors = "utf-8", "backslashreplace"
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding=encoding, errors=errors, write_through=True)


def _readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def _flush(stream: object) -> None:
    try:
        stream.flush()  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        pass
