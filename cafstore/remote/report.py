"""What a push or a pull did, for the command's summary (and ``--json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

from cafstore.exception import CafstoreError

# progress(bytes done, bytes in all): called from the transfer loop after each object or pack moved.
# A terminal's progress bar plugs in here; the commands print a plain summary either way.
Progress = Optional[Callable[[int, Optional[int]], None]]


@dataclass
class TransferReport:
    remote: str
    runs_sent: list = field(default_factory=list)  # runs whose objects and ref were written
    runs_updated: list = field(default_factory=list)  # runs whose tags or pin were merged
    runs_unchanged: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # [run, why]
    objects_sent: int = 0
    bytes_sent: int = 0
    objects_skipped: int = 0  # already on the other side
    bytes_skipped: int = 0
    requests: int = 0  # packs and loose objects moved (each one request or one multipart transfer)
    seconds: float = 0.0
    failed: list = field(default_factory=list)  # [run, message]: refused, the other runs went on
    errors: list = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        del out["errors"]
        return out

    def fail(self, run: str, error: CafstoreError) -> None:
        """Record that ``run`` could not travel; the others go on, and ``check`` raises at the end."""
        self.failed.append([run, str(error)])
        self.errors.append(error)

    def check(self) -> None:
        """Raise the first run's error (its class, e.g. RemoteObjectCorrupt), saying what else happened."""
        if not self.errors:
            return
        error = self.errors[0]
        done = len(self.runs_sent) + len(self.runs_updated) + len(self.runs_unchanged)
        others = f" {len(self.errors) - 1} other run(s) failed too." if len(self.errors) > 1 else ""
        error.message = f"{error.message}{others} The other {done} run(s) were done."
        error.args = (error.message, *error.args[1:])
        raise error


class Meter:
    """Counts bytes moved and reports them to ``progress`` (thread-safe enough: CPython's += on an
    attribute under the GIL can interleave, so a lock guards it)."""

    def __init__(self, total: int, progress: Progress) -> None:
        import threading

        self.total, self.done, self.progress = total, 0, progress
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            done = self.done
        if self.progress is not None:
            self.progress(done, self.total or None)  # a pull's total is not known up front: 0 means unknown
