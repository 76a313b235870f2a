"""fsck --repair, runs_using, the full-disk path, and the maintenance commands as a user types them."""

from __future__ import annotations

import errno
import json
import os
import time

import click
import pytest
from click.testing import CliRunner
from maint_helpers import age, make_run

from cafstore.cli.context import CliState, friendly_errors, pass_state
from cafstore.cli.main import cli
from cafstore.exception import StorageFull
from cafstore.maintenance.repair import repair, runs_using
from cafstore.store import Store, StoreConfig, chunks


def _damage(store):
    """Run F/1 loses a file, F/2 gets a corrupt chunk, F/3 is intact; plus a stray temp file."""
    values = {"a": os.urandom(5000), "big": os.urandom(200_000)}
    one = make_run(store, "F", 1, {"a": values["a"]})
    two = make_run(store, "F", 2, {"big": values["big"]})
    one["values"] = two["values"] = values
    make_run(store, "F", 3, {"c": os.urandom(5000)})
    os.unlink(store.blobs.path(one["artifacts"]["a"]))
    cid = next(c for c, _ in chunks.chunk_ids(store, two["artifacts"]["big"]) if store.stat(c).location == "file")
    path = store.blobs.path(cid)
    os.chmod(path, 0o644)
    corrupt = bytearray(path.read_bytes())
    corrupt[0] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    temp = store.blobs.tmp / "1-dead"
    temp.write_bytes(b"partial")
    os.utime(temp, (time.time() - 7200,) * 2)
    return one, two, cid


def test_runs_using_names_every_run_of_an_object(store):
    shared = make_run(store, "F", 1, {"x": b"shared" * 100})["artifacts"]["x"]
    make_run(store, "F", 2, {"x": b"shared" * 100})
    make_run(store, "G", 1, {"y": 1})
    assert list(runs_using(store, [shared])) == ["F/1", "F/2"]
    big = make_run(store, "G", 2, {"big": os.urandom(100_000)})["artifacts"]["big"]
    first_chunk = chunks.chunk_ids(store, big)[0][0]
    assert list(runs_using(store, [first_chunk])) == ["G/2"]  # through the chunk list


def test_fsck_repair_cleans_up_and_lists_the_runs_that_lost_data(store):
    one, two, cid = _damage(store)
    report = repair(store)
    assert report.removed_temp == ["1-dead"]
    assert report.removed_entries == [one["artifacts"]["a"]]
    assert set(report.quarantined) == {cid, two["artifacts"]["big"]}
    assert sorted(report.lost_runs) == ["F/1", "F/2"]
    assert (store.path / "quarantine" / str(cid)).exists()
    assert not store.fsck().ok  # F/1 and F/2 still point at what they lost
    # Storing the same content again (re-running the step) heals the store: no dedup against a bad copy.
    assert store.put_artifact(one["values"]["a"]) == one["artifacts"]["a"]
    assert store.put_artifact(two["values"]["big"]) == two["artifacts"]["big"]
    assert store.fsck().ok


def test_a_corrupt_read_in_any_command_names_the_runs(store):
    _, two, _ = _damage(store)
    oid = two["artifacts"]["big"]

    @click.command()
    @pass_state
    @friendly_errors
    def read(state):
        state.store.get_artifact(oid, verify=True)

    result = CliRunner().invoke(read, obj=CliState(str(store.path)))
    assert result.exit_code == 1 and "corrupt object" in result.output
    assert str(oid) in result.output and "Runs that use it: F/2." in result.output


def test_cli_fsck_repair_and_corrupt_read_name_the_runs(store):
    _damage(store)
    store.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["--store", str(store.path), "fsck"])
    assert result.exit_code == 1 and "run F/1 lost data" in result.output and "run F/2 lost data" in result.output
    result = runner.invoke(cli, ["--store", str(store.path), "fsck", "--repair"])
    assert "repair: removed temp file 1-dead" in result.output and "moved corrupt object" in result.output
    assert result.exit_code == 1  # data is still lost: the verdict says so until the runs are removed
    result = runner.invoke(cli, ["--store", str(store.path), "rm", "--yes", "F/1", "F/2"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["--store", str(store.path), "gc", "--grace", "0"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(cli, ["--store", str(store.path), "fsck"]).exit_code == 0


def test_cli_gc_pin_rm_undelete_dedup(store):
    make_run(store, "F", 1, {"x": os.urandom(3000)})
    make_run(store, "F", 2, {"x": os.urandom(3000)})
    make_run(store, "F", 3, {"x": os.urandom(3000)})
    age(store)
    store.close()
    runner = CliRunner()

    def run(*args, **kw):
        return runner.invoke(cli, ["--store", str(store.path), *args], **kw)

    assert run("pin", "F/1").output == "pinned F/1\n"
    assert run("pin", "F/1").output == "F/1 was already pinned\n"
    result = run("rm", "F/2", input="n\n")
    assert result.exit_code == 1 and "nothing deleted" in result.output
    assert run("rm", "F/2", input="y\n").exit_code == 0
    assert run("undelete", "F/2").output == "restored F/2\n"
    result = run("gc", "--dry-run", "--keep-last", "1", "--grace", "0")
    assert "would drop run F/2 (not among the last 1)" in result.output
    assert "kept F/1 (pinned)" in result.output and "warning: a grace period" in result.output
    result = run("gc", "--keep-last", "1", "--grace", "0", "--json")
    assert json.loads(result.output)["dropped_runs"] == [["F/2", "not among the last 1"]]
    assert run("gc", "--older-than", "soon").exit_code == 2
    assert run("rm", "--yes", "F/9").exit_code == 1 and "No run F/9" in run("rm", "--yes", "F/9").output
    assert "not a run" in run("pin", "F").output
    result = run("dedup", "--dry-run")
    assert "dedup ratio" in result.output and result.exit_code == 0
    assert json.loads(run("dedup", "--json").output)["physical_bytes"] > 0
    assert run("unpin", "F/1").output == "unpinned F/1\n"


def test_gc_refusal_is_one_clear_error_and_exit_1(store):
    made = make_run(store, "F", 1, {"x": os.urandom(3000)})
    with store.index.write() as txn:
        txn.delete(made["tasks"]["end"].digest, db=store.index.tables["objects"])
    store.close()
    result = CliRunner().invoke(cli, ["--store", str(store.path), "gc"])
    assert result.exit_code == 1
    assert "gc deleted nothing" in result.output and str(made["tasks"]["end"]) in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("size, fail_after", [(5000, 0), (300_000, 3)])
def test_full_disk_is_a_clear_error_and_leaves_a_consistent_store(store, monkeypatch, size, fail_after):
    """ENOSPC injected at the blob write (whole objects, and midway through a chunked one)."""
    make_run(store, "F", 1, {"x": 1})
    real_write = os.write
    calls = {"n": 0}

    def full(fd, data):
        calls["n"] += 1
        if calls["n"] > fail_after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageFull, match="disk holding the store is full"):
        store.put_bytes(os.urandom(size))
    monkeypatch.setattr(os, "write", real_write)
    assert list(store.blobs.tmp.iterdir()) == []  # no half-written temp file left behind
    report = store.fsck()
    assert report.ok, report.problems
    gc_report = __import__("cafstore.maintenance.gc", fromlist=["collect"]).collect(store, grace=0)
    assert store.fsck().ok and not store.fsck().notes and gc_report.scanned > 0


def test_full_disk_on_a_real_small_filesystem(tmp_path):
    """A 4 MiB tmpfs, when this machine lets us mount one (root in a privileged container)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or os.system(f"mount -t tmpfs -o size=4m tmpfs {mount} 2>/dev/null") != 0:
        pytest.skip("cannot mount a tmpfs here; the injected-failure test covers this path")
    try:
        store = Store(mount / "store", config=StoreConfig(durable=False, initial_map_size=1 << 20))
        kept = store.put_bytes(os.urandom(500_000))
        with pytest.raises(StorageFull):
            for _ in range(20):
                store.put_bytes(os.urandom(600_000))
        assert store.get_bytes(kept, verify=True)
        assert store.fsck().ok
        store.close()
    finally:
        os.system(f"umount {mount}")


def test_bad_runs_and_durations_are_maintenance_errors_the_cli_words_as_usage_errors(store):
    from cafstore.exception import CommandLineError, MaintenanceArgumentError, StoreError
    from cafstore.maintenance import retention

    with pytest.raises(MaintenanceArgumentError, match="is not a run"):
        retention.parse_pathspec("F")
    with pytest.raises(MaintenanceArgumentError, match="is not a duration"):
        retention.parse_duration("soon")
    assert issubclass(MaintenanceArgumentError, StoreError)
    assert not issubclass(MaintenanceArgumentError, CommandLineError)  # maintenance knows no command line
    store.close()
    result = CliRunner().invoke(cli, ["--store", str(store.path), "pin", "F"])
    expected = "Error: bad command line: 'F' is not a run: write it as FlowName/RunNumber, e.g. HelloFlow/3.\n"
    assert result.exit_code == 2 and result.output == expected  # a usage error: click's exit status
