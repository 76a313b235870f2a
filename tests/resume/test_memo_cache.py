"""Memoised steps: ``run --cache`` and ``@cache``, hits and misses, and what gc leaves."""

from __future__ import annotations

from resume_helpers import both, read_store, reused, reused_from, started

FIVE = ["start", "s1", "s2", "s3", "end"]


def test_an_unchanged_flow_reuses_every_task(flow, client):
    five = flow("five.py")
    first = five("run", "--cache")
    assert first.returncode == 0, both(first)
    assert started(first.stdout) == {step: 1 for step in FIVE} and not reused(first.stdout)
    second = five("run", "--cache")
    assert second.returncode == 0, both(second)
    assert not started(second.stdout) and "RAN" not in second.stdout
    assert reused(second.stdout) == {step: 1 for step in FIVE}
    # The log says which run each task came from.
    for step in FIVE:
        ((origin, source),) = reused_from(second.stdout)[step]
        assert origin.startswith(f"FiveFlow/1/{step}/") and source == "from the cache"
    run = client.Run("FiveFlow/2")
    assert run.successful and run["s3"].task.data.v3 == 7
    assert run["s3"].task.origin_pathspec.startswith("FiveFlow/1/s3/")
    # Without --cache nothing is reused.
    plain = five("run")
    assert started(plain.stdout) == {step: 1 for step in FIVE} and not reused(plain.stdout)


def test_editing_a_step_misses_it_and_what_its_outputs_feed(flow, client):
    five = flow("five.py")
    assert five("run", "--cache").returncode == 0
    five.edit("self.v2 = self.v1 * 2", "self.v2 = self.v1 * 5")
    out = five("run", "--cache")
    assert out.returncode == 0, both(out)
    assert set(reused(out.stdout)) == {"start", "s1"} and set(started(out.stdout)) == {"s2", "s3", "end"}
    assert client.Run("FiveFlow/2")["s3"].task.data.v3 == 13
    # A change that leaves a step's outputs as they were: that step runs, the steps after it hit
    # (their keys are made of input artifact ids, which are the same).
    five.edit("self.v2 = self.v1 * 5", "self.v2 = self.v1 * 5  # same result, new code")
    again = five("run", "--cache")
    assert again.returncode == 0, both(again)
    assert set(started(again.stdout)) == {"s2"}
    assert set(reused(again.stdout)) == {"start", "s1", "s3", "end"}


def test_a_changed_parameter_misses_from_start_on(flow, client):
    five = flow("five.py")
    assert five("run", "--cache").returncode == 0
    other = five("run", "--cache", "--k", "2")
    assert other.returncode == 0, both(other)
    assert started(other.stdout) == {step: 1 for step in FIVE} and not reused(other.stdout)
    assert client.Run("FiveFlow/2")["s3"].task.data.v3 == 9
    # Both values are now cached.
    for k, run_id in (("1", 3), ("2", 4)):
        out = five("run", "--cache", "--k", k)
        assert out.returncode == 0 and not started(out.stdout), both(out)
        assert client.Run(f"FiveFlow/{run_id}")["s3"].task.data.v3 == (7 if k == "1" else 9)


def test_a_changed_upstream_artifact_misses(flow):
    five = flow("five.py")
    assert five("run", "--cache").returncode == 0
    five.edit("self.v1 = self.v0 + 1", "self.v1 = self.v0 + 100")
    out = five("run", "--cache")
    assert out.returncode == 0, both(out)
    # s1 changed; s2 and s3 kept their code but their input artifact changed.
    assert set(reused(out.stdout)) == {"start"} and set(started(out.stdout)) == {"s1", "s2", "s3", "end"}


def test_the_cache_decorator_works_without_the_flag(flow, client):
    one = flow("onecache.py")
    first = one("run")
    assert first.returncode == 0, both(first)
    second = one("run")
    assert second.returncode == 0, both(second)
    # start and end are not memoised and run again; start's outputs are the same bytes, so
    # slow's key matches and slow is reused.
    assert started(second.stdout) == {"start": 1, "end": 1}
    assert reused(second.stdout) == {"slow": 1}
    assert "y=42" in second.stdout
    assert client.Run("OneCacheFlow/2")["slow"].task.origin_pathspec.startswith("OneCacheFlow/1/slow/")


def test_failed_tasks_are_not_cached(flow):
    five = flow("five.py")
    five.edit("self.v3 = self.v2 + 3", "self.v3 = self.v2 + 3\n        raise RuntimeError('s3 fails')")
    first = five("run", "--cache")
    assert first.returncode == 1, both(first)
    five.edit("\n        raise RuntimeError('s3 fails')", "")
    out = five("run", "--cache")
    assert out.returncode == 0, both(out)
    # What succeeded in the failed run is cached; s3 (fixed) and end run.
    assert set(reused(out.stdout)) == {"start", "s1", "s2"} and set(started(out.stdout)) == {"s3", "end"}


def test_after_gc_swept_a_cached_run_its_tasks_run_again(flow, store_path, client):
    five = flow("five.py")
    assert five("run", "--cache").returncode == 0
    removed = five.cafstore("rm", "--yes", "FiveFlow/1")
    assert removed.returncode == 0, both(removed)
    gc = five.cafstore("gc", "--grace", "0")
    assert gc.returncode == 0, both(gc)
    # The cache refs are weak: the run's records and artifacts are gone, the refs are not.
    store = read_store(store_path)
    try:
        entries = store.list_refs("cache/")
        assert len(entries) == 5
        assert not any(store.exists(value) for _name, value in entries)
    finally:
        store.close()
    out = five("run", "--cache")
    assert out.returncode == 0, both(out)
    assert started(out.stdout) == {step: 1 for step in FIVE} and not reused(out.stdout)
    assert client.Run("FiveFlow/2")["s3"].task.data.v3 == 7
    # ... and they are cached again.
    again = five("run", "--cache")
    assert not started(again.stdout) and reused(again.stdout) == {step: 1 for step in FIVE}


def test_a_partly_swept_cached_record_is_a_miss(flow, store_path):
    """A record still there but an artifact it names gone (what an interrupted gc could leave)."""
    five = flow("five.py")
    assert five("run", "--cache").returncode == 0
    store = read_store(store_path)
    try:
        from cafstore.runner.reuse import memo

        ((name, value),) = [(n, v) for n, v in store.list_refs("cache/") if store.get_record(v)["step"] == "s2"]
        record = store.get_record(value)
        assert memo.lookup(store, name[len("cache/") :]) is not None
        # Point the entry at a copy of the record that names an object the store does not have.
        from cafstore.store import hash_bytes

        broken = dict(record, artifacts=dict(record["artifacts"], v2=hash_bytes(b"swept away")))
        broken_id = store.put_record(broken)
        store.set_ref(name, str(broken_id))
        assert memo.lookup(store, name[len("cache/") :]) is None
    finally:
        store.close()
    out = five("run", "--cache")
    assert out.returncode == 0, both(out)
    assert set(started(out.stdout)) == {"s2"}  # s2 runs; its outputs are the same, so s3 and end hit
    assert set(reused(out.stdout)) == {"start", "s1", "s3", "end"}
