"""What a task printed and Metaflow's metadata about it: a part of :class:`~cafstore.client.tasks.Task`.

Both are read from the task's records alone (its attempt chain and the
objects the records name), so they sit apart from the lineage and artifact
lookups of tasks.py; ``Task`` inherits them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, List

from cafstore.client import logtext, taskmeta
from cafstore.client.damage import raise_with_runs
from cafstore.client.data import Metadata
from cafstore.exception import CorruptObject

LOG_STREAMS = ("stdout", "stderr")


class TaskLogsAndMetadata:
    """Logs and metadata of a task; the Task supplies ``_store``, ``_record``, ``_oid``, ``_run``, ``_step``."""

    _store: Any
    _oid: Any
    pathspec: str
    _attempt_selected: bool

    if TYPE_CHECKING:

        @property
        def _record(self) -> dict: ...

        @property
        def _run(self) -> Any: ...

    # -- logs --------------------------------------------------------------
    def log_bytes(self, stream: str) -> bytes:
        """The log as stored: each line prefixed with its UTC time (docs/datamodel.md, "Task logs").

        ``stdout``/``stderr`` give the text without the stamps; this is for
        views that print the lines with their times.
        """
        if stream not in LOG_STREAMS:
            raise ValueError("stream is 'stdout' or 'stderr'")
        oid = self._record.get(stream)
        if oid is None:
            return b""
        try:
            return self._store.get_bytes(oid)
        except CorruptObject as exc:
            raise_with_runs(self._store, exc)

    @property
    def stdout(self) -> str:
        return logtext.text(self.log_bytes("stdout"))

    @property
    def stderr(self) -> str:
        return logtext.text(self.log_bytes("stderr"))

    def loglines(self, stream: str = "stdout") -> Iterator[tuple]:
        """(datetime, line) for each line the task printed to ``stream``."""
        return logtext.lines(self.log_bytes(stream))

    # -- metadata ----------------------------------------------------------
    def _attempt_records(self) -> List[tuple]:
        """(record id, record) of every attempt shown, oldest first: all of them, or only the one
        selected with ``Task(..., attempt=N)`` (like Metaflow's ``metadata``)."""
        chain = [(self._oid, self._record)]
        if not self._attempt_selected:
            while chain[-1][1].get("previous_attempt") is not None:
                previous = chain[-1][1]["previous_attempt"]
                chain.append((previous, self._store.get_record(previous)))
        return chain[::-1]

    @property
    def metadata(self) -> List[Metadata]:
        """Metaflow's task metadata (``attempt``, ``origin-run-id``, ``attempt_ok``, ...) as
        (name, value, created_at, type, task) tuples, values as strings, across the task's attempts
        (docs/client.md lists the names)."""
        run_meta = self._run.ref_value
        flow, _run_id, step, _task_id = self.pathspec.split("/")
        out: List[Metadata] = []
        for oid, record in self._attempt_records():
            facts = taskmeta.task_facts(self._store, flow, run_meta, step, oid, record)
            out.extend(Metadata(name, value, when, kind, self) for name, value, when, kind in facts)
        return out

    @property
    def metadata_dict(self) -> Dict[str, Any]:
        """Each metadata name's newest value (the last attempt's)."""
        return {m.name: m.value for m in sorted(self.metadata, key=lambda m: m.created_at or 0)}
