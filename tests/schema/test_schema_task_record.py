"""The task record (cafstore.schema.task_record): one builder for both writers, the stored format unchanged.

The task process writes the record of every attempt it finishes; the
scheduler writes one for an attempt whose process died. Real runs of both
kinds are read back here and rebuilt from their own fields: the builder must
give the very same record, hence the same object id, so stores written
before the builder existed read back identically and resumes keep reusing
their records.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cafstore
from cafstore import schema
from cafstore.store import ObjectId, Store, hash_bytes

FLOWS = Path(__file__).resolve().parents[1] / "runner" / "flows"


def oid(text: str) -> ObjectId:
    return ObjectId(str(hash_bytes(text.encode())))


def run(store_path: Path, flow: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    environ.update(CAFSTORE_USER="tester", **env)
    return subprocess.run(
        [sys.executable, str(FLOWS / flow), "--store", str(store_path), "run"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rebuilt(record: dict) -> dict:
    """``record`` built again from its own fields by the one builder."""
    env = record["env"]
    return schema.task_record(
        flow=record["flow"],
        run_id=record["run_id"],
        step=record["step"],
        task_id=record["task_id"],
        attempt=record["attempt"],
        status=record["status"],
        parents=[str(p) for p in record["parents"]],
        artifacts=record["artifacts"],
        new_artifacts=record["new_artifacts"],
        stdout=record["stdout"],
        stderr=record["stderr"],
        code=str(record["code"]),
        started=record["started"],
        finished=record["finished"],
        exception=record["exception"],
        foreach_stack=[dict(f, values=str(f["values"])) for f in record["foreach_stack"]],
        num_splits=record["num_splits"],
        user=env["user"],
        hostname=env["hostname"],
        pid=env["pid"],
        previous_attempt=None if record["previous_attempt"] is None else str(record["previous_attempt"]),
        cache_key=record["cache_key"],
    )


def every_attempt(store: Store) -> list:
    """(record id, record) of every attempt of every task in the store, final and earlier ones."""
    out = []
    for _name, record_id in store.iter_refs(schema.TASKS_PREFIX):
        while record_id is not None:
            record = store.get_record(record_id)
            out.append((record_id, record))
            record_id = record["previous_attempt"]
    return out


def test_records_of_real_runs_are_what_the_builder_makes(tmp_path):
    path = tmp_path / "store"
    assert run(path, "nested.py").returncode == 0  # foreach frames, splits, joins: written by the tasks
    died = run(path, "failing.py", KIND="exit", RETRIES="1")  # both attempts die: written by the scheduler
    assert died.returncode != 0
    store = Store(path)
    attempts = every_attempt(store)
    lost = [r for _, r in attempts if r["exception"] and r["exception"]["type"] == "TaskFailed"]
    assert len(lost) == 2 and lost[0]["previous_attempt"] is not None and lost[0]["env"]["pid"] == 0
    assert any(r["foreach_stack"] and r["num_splits"] is None for _, r in attempts)
    assert any(r["num_splits"] for _, r in attempts)
    for record_id, record in attempts:
        assert set(record) == set(schema.TASK_RECORD_FIELDS)
        again = rebuilt(record)
        assert again == record
        assert store.put_record(again) == record_id  # same bytes, same id


def test_the_stored_fields_are_the_documented_ones():
    """A lock on the format: every field, spelled out, for a failed retried task inside a foreach."""
    record = schema.task_record(
        flow="F",
        run_id=3,
        step="body",
        task_id=7,
        attempt=1,
        status=schema.TASK_FAILED,
        parents=[str(oid("p"))],
        artifacts={"x": oid("x")},
        new_artifacts=["x", "a"],
        stdout=oid("o"),
        stderr=oid("e"),
        code=str(oid("code")),
        started=1.5,
        finished=2.5,
        exception={"type": "ValueError", "message": "no", "traceback": "tb", "where": "f.py:3", "user_error": True},
        foreach_stack=[{"step": "start", "var": "items", "index": 2, "num_splits": 4, "values": str(oid("v"))}],
        num_splits=None,
        user="anne",
        hostname="box",
        pid=42,
        previous_attempt=str(oid("before")),
    )
    assert record == {
        "kind": "task",
        "flow": "F",
        "run_id": 3,
        "step": "body",
        "task_id": 7,
        "attempt": 1,
        "status": "failed",
        "parents": [oid("p")],
        "artifacts": {"x": oid("x")},
        "new_artifacts": ["a", "x"],
        "stdout": oid("o"),
        "stderr": oid("e"),
        "code": oid("code"),
        "started": 1.5,
        "finished": 2.5,
        "exception": {"type": "ValueError", "message": "no", "traceback": "tb"},
        "foreach_stack": [{"step": "start", "var": "items", "index": 2, "num_splits": 4, "values": oid("v")}],
        "num_splits": None,
        "env": {
            "python_version": sys.version.split()[0],
            "platform": sys.platform,
            "hostname": "box",
            "pid": 42,
            "cafstore_version": cafstore.__version__,
            "user": "anne",
        },
        "cache_key": None,
        "previous_attempt": oid("before"),
    }
    assert all(isinstance(p, ObjectId) for p in record["parents"])  # ids are ObjectIds: gc and fsck follow them
    assert set(record) == set(schema.TASK_RECORD_FIELDS)


@pytest.mark.parametrize("previous", [None, ""])
def test_a_first_attempt_has_no_previous_attempt(previous):
    record = schema.task_record(
        flow="F",
        run_id=1,
        step="start",
        task_id=1,
        attempt=0,
        status=schema.TASK_OK,
        parents=[],
        artifacts={},
        new_artifacts=[],
        stdout=oid("o"),
        stderr=oid("e"),
        code=oid("c"),
        started=0.0,
        finished=0.0,
        exception=None,
        foreach_stack=[],
        num_splits=3,
        user="u",
        hostname="h",
        pid=1,
        previous_attempt=previous,
    )
    assert record["previous_attempt"] is None and record["exception"] is None and record["num_splits"] == 3
