"""One damaged ref never breaks the command line or the client (issue 12, item 6).

A store of five real runs of ``flows/reuse_flow.py`` is damaged inside LMDB
itself -- bytes written straight under the real ref names through the
index's write transaction, the way a crashed tool, a bad merge or a disk
error would leave them:

- ``ReuseFlow/1``: an unknown status (``exploded``);
- ``ReuseFlow/2``: its value cut mid-JSON (and the run was pinned before);
- ``ReuseFlow/3``: a run ref describing another run (``run_id`` 103);
- ``ReuseFlow/4``: its run ref intact, but its ``start`` task ref points at
  the record of its ``end`` task, and its ``middle`` task ref is cut mid-JSON;
- ``ReuseFlow/5`` (the newest): bytes that are not even UTF-8.

``log``, ``ls``, ``rm``, ``fsck`` must report each in one line and go on;
``fsck --repair`` moves them aside to ``damaged/`` (original bytes kept),
says which runs were affected, and leaves a store that fsck passes and gc
collects without losing anything the damaged refs named.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from cafstore import schema
from cafstore.exception import DamagedRef, DamagedRefWarning
from cafstore.store import Store, records

FLOW = Path(__file__).with_name("flows") / "reuse_flow.py"
RUN_IDS = range(1, 6)
MIDDLE_4 = schema.task_ref("ReuseFlow", 4, "middle", 2)


def _ref(run_id: int) -> str:
    return schema.run_ref("ReuseFlow", run_id)


def _put_raw(store: Store, name: str, raw: bytes) -> None:
    """Write ``raw`` as the stored value of ref ``name``, bypassing every encoder: a damaged store."""
    index = store.index
    with index.write() as txn:
        txn.put(name.encode("utf-8"), raw, db=index.tables["refs"])


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """Five real runs, then the damage listed in the module docstring (built once, copied per test)."""
    path = tmp_path_factory.mktemp("damaged-refs") / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env["CAFSTORE_USER"] = "tester"
    for _ in RUN_IDS:
        done = subprocess.run(
            [sys.executable, str(FLOW), "--store", str(path), "run", "--size", "100"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    store = Store(path)
    store.set_ref(schema.pin_ref("ReuseFlow", 2), {"pinned_at": 0.0, "by": "tester"})
    meta = {run_id: store.get_ref(_ref(run_id)) for run_id in RUN_IDS}
    _put_raw(store, _ref(1), records.encode(dict(meta[1], status="exploded")))
    _put_raw(store, _ref(2), records.encode(meta[2])[:40])
    _put_raw(store, _ref(3), records.encode(dict(meta[3], run_id=103)))
    [(start_ref, _)] = store.list_refs(schema.tasks_prefix("ReuseFlow", 4, "start"))
    [(_, end_record)] = store.list_refs(schema.tasks_prefix("ReuseFlow", 4, "end"))
    _put_raw(store, start_ref, records.encode(end_record))
    assert store.get_raw_ref(MIDDLE_4) is not None
    _put_raw(store, MIDDLE_4, b'{"$oid": "12')
    _put_raw(store, _ref(5), b"\xff\xfe" + records.encode(meta[5])[2:])
    store.close()
    return path


@pytest.fixture
def damaged(template, tmp_path) -> Path:
    path = tmp_path / "store"
    shutil.copytree(template, path)
    return path


def _lines_naming(text: str, needle: str) -> list:
    return [line for line in text.splitlines() if needle in line]


def test_the_cli_reports_each_damaged_ref_in_one_line_goes_on_and_repair_sets_them_aside(damaged, run_cli):
    store = ["--store", str(damaged)]
    names = [_ref(1), _ref(2), _ref(3), _ref(5)]

    log = run_cli(*store, "log", "--all", "--oneline")
    assert log.returncode == 0 and "Traceback" not in log.stderr, log.stderr
    assert [line.split()[0] for line in log.stdout.splitlines()] == ["ReuseFlow/4"], log.stdout
    for name in names:
        assert len(_lines_naming(log.stderr, name)) == 1 and f"warning: The ref {name!r}" in log.stderr, log.stderr

    listing = run_cli(*store, "ls", "ReuseFlow", "--all")
    assert listing.returncode == 0 and listing.stdout.split()[0] == "ReuseFlow/4", listing.stdout + listing.stderr
    assert all(len(_lines_naming(listing.stderr, name)) == 1 for name in names), listing.stderr
    steps = run_cli(*store, "ls", "ReuseFlow/4")  # a damaged task ref: skipped, the other tasks listed
    assert steps.returncode == 0 and len(_lines_naming(steps.stderr, MIDDLE_4)) == 1, steps.stdout + steps.stderr
    assert "ReuseFlow/4/end" in steps.stdout and "Traceback" not in steps.stderr, steps.stdout + steps.stderr

    removed = run_cli(*store, "rm", "--yes", "ReuseFlow/2", "ReuseFlow/1")
    assert removed.returncode == 1 and "Traceback" not in removed.stderr, removed.stderr
    assert len(_lines_naming(removed.stderr, _ref(2))) == 1, removed.stderr  # cannot be marked: one line
    assert "deleted ReuseFlow/1" in removed.stdout  # ...and the next run is still handled

    fsck = run_cli(*store, "fsck")
    assert fsck.returncode == 1 and "Traceback" not in fsck.stdout + fsck.stderr, fsck.stdout + fsck.stderr
    problems = [line for line in fsck.stdout.splitlines() if line.startswith("problem:")]
    expected = {name: f"(run ReuseFlow/{name[-1]})" for name in names}
    expected.update({"start/0000000001": "(run ReuseFlow/4)", MIDDLE_4: "(run ReuseFlow/4)"})
    assert len(problems) == len(expected), problems
    for needle, run in expected.items():
        [line] = _lines_naming("\n".join(problems), needle)
        assert run in line, line
    assert "not of ReuseFlow/start" in fsck.stdout and "status 'exploded'" in fsck.stdout, fsck.stdout

    before = Store(damaged)
    raw = {name: before.get_raw_ref(name) for name in names}
    task_records = [  # every task of the runs whose run ref is damaged
        records.decode(value)
        for name, value in before.iter_raw_refs(schema.TASKS_PREFIX)
        if not name.startswith(schema.tasks_prefix("ReuseFlow", 4))
    ]
    before.close()
    repaired = run_cli(*store, "fsck", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    for name in names:
        [line] = _lines_naming(repaired.stdout, f"moved damaged ref {name!r} to 'damaged/{name}'")
        assert f"run ReuseFlow/{name[-1]} is affected" in line, line
    assert "(4 task/pin ref(s) of the run moved with it)" in repaired.stdout  # run 2: 3 tasks and its pin
    [line] = _lines_naming(repaired.stdout, f"moved damaged ref {MIDDLE_4!r}")
    assert "run ReuseFlow/4 is affected" in line, line
    assert repaired.stdout.rstrip().endswith("ok"), repaired.stdout

    after = Store(damaged)
    for name in names:  # nothing is lost: the original bytes are kept under damaged/
        kept = after.get_ref(f"damaged/{name}")["original"]
        assert (kept["text"].encode() if "text" in kept else base64.b64decode(kept["base64"])) == raw[name]
        assert after.get_raw_ref(name) is None
    assert after.get_raw_ref(schema.pin_ref("ReuseFlow", 2)) is None
    after.close()

    clean = run_cli(*store, "log", "--all", "--oneline")
    assert clean.returncode == 0 and clean.stderr == "" and clean.stdout.split()[0] == "ReuseFlow/4", clean.stderr
    collected = run_cli(*store, "gc", "--grace", "0")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    final = Store(damaged)
    assert final.fsck().ok
    for record_id in task_records:  # gc kept every task the damaged runs had (fail closed)
        assert final.exists(record_id)
    final.close()


def test_the_client_skips_a_damaged_run_with_a_warning_and_names_it_when_asked(damaged, monkeypatch):
    import cafstore
    from cafstore.client import connection

    monkeypatch.setenv("CAFSTORE_HOME", str(damaged))
    connection.use_store(None)
    cafstore.namespace(None)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DamagedRefWarning)
            latest = cafstore.Flow("ReuseFlow").latest_run  # the newest run ref (5) is damaged
            runs = [run.id for run in cafstore.Flow("ReuseFlow").runs()]
        assert latest is not None and latest.id == "4"
        assert runs == ["4"]
        skipped = [str(w.message) for w in caught if issubclass(w.category, DamagedRefWarning)]
        assert {name for name in map(_ref, (1, 2, 3, 5)) if any(name in text for text in skipped)} == {
            _ref(1),
            _ref(2),
            _ref(3),
            _ref(5),
        }
        with pytest.raises(DamagedRef) as info:
            cafstore.Run("ReuseFlow/2")
        assert info.value.name == _ref(2) and "fsck --repair" in str(info.value)
    finally:
        connection.use_store(None)


def test_resume_names_a_damaged_origin_and_skips_damaged_runs_when_finding_one(damaged):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFSTORE_")}
    env["CAFSTORE_USER"] = "tester"

    def resume(*args: str) -> "subprocess.CompletedProcess[str]":
        command = [sys.executable, str(FLOW), "--store", str(damaged), "resume", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    named = resume("--origin-run-id", "2")
    assert named.returncode == 1 and "Traceback" not in named.stdout + named.stderr, named.stdout + named.stderr
    assert f"The ref {_ref(2)!r} (run ReuseFlow/2) is damaged" in named.stdout + named.stderr
    latest = resume()  # the newest run (5) is damaged: resumed from run 4, with a warning naming run 5
    assert latest.returncode == 0, latest.stdout + latest.stderr
    assert "Resuming ReuseFlow/4." in latest.stdout and _ref(5) in latest.stderr, latest.stdout + latest.stderr
