"""What a push or a pull did, for the command's summary (and ``--json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

# progress(bytes done, bytes in all): called from the transfer loop after each object or pack moved.
# A terminal's progress bar plugs in here; the commands print a plain summary either way.
Progress = Optional[Callable[[int, int], None]]


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

    def to_dict(self) -> dict:
        return asdict(self)


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
            self.progress(done, self.total)
