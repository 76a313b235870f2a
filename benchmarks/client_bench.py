"""Client lookups against a long run history, next to Metaflow's client on the same kind of history.

    python benchmarks/client_bench.py [--runs 100,1000,10000] [--metaflow-runs 100,1000] [--json FILE]

cafstore: a store with N runs of a two-step flow (start -> end, a small
artifact ``x`` per run), written straight into refs and records exactly as
docs/datamodel.md says the runner writes them, 1,000 runs per transaction
(10,000 runs take seconds instead of an hour of real runs). Then, with fresh
client objects each time (no caching across calls):

- ``latest_run``:   ``Flow('F').latest_run``
- ``Run()``:        ``Run('F/<random n>')``
- ``artifact``:     ``Task('F/<random n>/start/1').data.x`` (pathspec lookup, record, unpickle)
- ``run.data``:     ``Run('F/<random n>').data.x`` (via the end task)
- worst case:       ``latest_run`` in a namespace whose only run is the oldest one
                    (the reverse scan reads every run ref; reported, not hidden)

Metaflow (if ``benchmarks/.venv-metaflow`` can be made, see _metaflow_env.py):
one real local run of the same flow, cloned N times on disk (run id and
timestamps rewritten, the way Metaflow's local metadata lays runs out),
then the same lookups in a Metaflow interpreter. Building Metaflow histories
costs ~0.4 MB and ~110 files per run, so its sizes are smaller; the report
gives per-run scaling (the slope between sizes) for both.

Times are medians over many calls, in microseconds (the lowest of three rounds' medians).
The cafstore part takes under a minute; cloning Metaflow's 1,000-run history
takes minutes (``--metaflow-runs 100`` for a quick look, ``''`` to skip it).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Callable, Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

FLOW = "BenchClientFlow"
FLOW_SOURCE = textwrap.dedent(f"""\
    from {{tool}} import FlowSpec, step


    class {FLOW}(FlowSpec):
        @step
        def start(self):
            self.x = 42
            self.next(self.end)

        @step
        def end(self):
            pass


    if __name__ == '__main__':
        {FLOW}()
""")


# -- cafstore --------------------------------------------------------------------------------
def extend_history(store, start: int, stop: int, user: str = "bench", batch: int = 1000) -> None:
    """Write runs ``start+1 .. stop`` of FLOW (run refs, task records, task refs, artifacts)."""
    code = store.put_bytes(FLOW_SOURCE.format(tool="cafstore").encode())
    graph = store.put_record(
        {
            "name": FLOW,
            "file": "flow.py",
            "doc": "",
            "steps": [{"name": "start", "type": "start", "next": ["end"]}, {"name": "end", "type": "end", "next": []}],
        }
    )
    log = store.put_bytes(b"2024-01-02T03:04:05.678901Z hello\n")
    empty = store.put_bytes(b"")
    env = {
        "python_version": sys.version.split()[0],
        "platform": sys.platform,
        "hostname": socket.gethostname(),
        "pid": 1,
        "cafstore_version": "0.1.0",
        "user": user,
    }
    base = time.time() - stop
    for first in range(start + 1, stop + 1, batch):
        with store.transaction() as txn:
            if txn.get_ref(f"flows/{FLOW}") is None:
                txn.set_ref(f"flows/{FLOW}", {"name": FLOW, "created": base})
            for n in range(first, min(first + batch, stop + 1)):
                assert txn.next_counter(f"run_id/{FLOW}") == n
                created = base + n
                run_user = "rare" if n == 1 else user
                arts = {"x": txn.put_artifact(n, "x")}
                parents = []
                for task_id, step in enumerate(("start", "end"), 1):
                    record = {
                        "kind": "task",
                        "flow": FLOW,
                        "run_id": n,
                        "step": step,
                        "task_id": task_id,
                        "attempt": 0,
                        "status": "ok",
                        "parents": parents,
                        "artifacts": arts,
                        "new_artifacts": ["x"] if step == "start" else [],
                        "stdout": log,
                        "stderr": empty,
                        "code": code,
                        "started": created,
                        "finished": created + 0.1,
                        "exception": None,
                        "foreach_stack": [],
                        "num_splits": None,
                        "env": env,
                        "cache_key": None,
                        "previous_attempt": None,
                    }
                    oid = txn.put_record(record)
                    txn.set_ref(f"tasks/{FLOW}/{n:010d}/{step}/{task_id:010d}", oid)
                    parents = [oid]
                txn.set_ref(
                    f"runs/{FLOW}/{n:010d}",
                    {
                        "flow": FLOW,
                        "run_id": n,
                        "status": "succeeded",
                        "user": run_user,
                        "user_tags": [],
                        "system_tags": [f"user:{run_user}", "runtime:dev"],
                        "parameters": {},
                        "created": created,
                        "finished": created + 0.2,
                        "origin_run_id": None,
                        "resumed_from": None,
                        "code": code,
                        "code_path": "flow.py",
                        "graph": graph,
                        "pid": 1,
                        "host": socket.gethostname(),
                        "deleted": None,
                    },
                )


def median_us(fn: Callable[[], object], calls: int, rounds: int = 3) -> float:
    """Median wall time of one call in microseconds, the lowest of ``rounds`` rounds (after warm-up).

    The lowest round median keeps a busy machine's noise (other processes) out of the figure.
    """
    for _ in range(min(20, calls)):
        fn()
    clock = time.perf_counter
    medians = []
    for _ in range(rounds):
        samples = []
        for _ in range(calls):
            t0 = clock()
            fn()
            samples.append(clock() - t0)
        medians.append(statistics.median(samples))
    return min(medians) * 1e6


def time_cafstore(store, n_runs: int, calls: int) -> Dict[str, float]:
    from cafstore.client import Flow, Run, Task, namespace, use_store

    use_store(store)
    namespace("user:bench")
    rng = random.Random(1)
    pick = lambda: rng.randint(2, n_runs)  # noqa: E731 - run 1 belongs to user 'rare'
    assert Flow(FLOW).latest_run.id == str(n_runs) and Task(f"{FLOW}/{n_runs}/start/1").data.x == n_runs
    out = {
        "latest_run": median_us(lambda: Flow(FLOW).latest_run, calls),
        "Run()": median_us(lambda: Run(f"{FLOW}/{pick()}"), calls),
        "artifact": median_us(lambda: Task(f"{FLOW}/{pick()}/start/1").data.x, calls),
        "run.data": median_us(lambda: Run(f"{FLOW}/{pick()}").data.x, calls),
    }
    namespace("user:rare")
    out["latest_run (worst: namespace's only run is the oldest)"] = median_us(
        lambda: Flow(FLOW).latest_run, max(3, min(calls, 20_000 // n_runs))
    )
    namespace("user:bench")
    use_store(None)
    return out


# -- Metaflow --------------------------------------------------------------------------------
MF_TIMER = textwrap.dedent("""\
    import json, random, statistics, sys, time
    from metaflow import Flow, Run, Task, namespace
    flow, ids, calls = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    namespace("user:cafbench")
    rng = random.Random(1)
    def med(fn, n, rounds=3):
        for _ in range(min(3, n)):
            fn()
        best = []
        for _ in range(rounds):
            s = []
            for _ in range(n):
                t0 = time.perf_counter(); fn(); s.append(time.perf_counter() - t0)
            best.append(statistics.median(s))
        return min(best) * 1e6
    latest = Flow(flow).latest_run
    assert latest.id == ids[-1], (latest.id, ids[-1])
    task_id = Run(flow + "/" + ids[0])["start"].task.id
    out = {
        "latest_run": med(lambda: Flow(flow).latest_run, max(3, calls // 10)),
        "Run()": med(lambda: Run(flow + "/" + rng.choice(ids)), calls),
        "artifact": med(lambda: Task(flow + "/" + rng.choice(ids) + "/start/" + task_id).data.x, calls),
        "run.data": med(lambda: Run(flow + "/" + rng.choice(ids)).data.x, calls),
    }
    print(json.dumps(out))
""")


def build_metaflow_history(python: str, scratch: Path, n_runs: int) -> "tuple[dict, List[str]]":
    """One real Metaflow run, cloned to ``n_runs`` runs in its local datastore."""
    from _metaflow_env import isolated_env

    env = isolated_env(scratch, "metaflow")
    flow_file = scratch / "mf_flow.py"
    flow_file.write_text(FLOW_SOURCE.format(tool="metaflow"))
    proc = subprocess.run(
        [python, str(flow_file), "--no-pylint", "run"],
        env=env,
        cwd=str(scratch),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"Metaflow run failed: {proc.stderr[-500:]}")
    flow_dir = Path(env["METAFLOW_DATASTORE_SYSROOT_LOCAL"]) / ".metaflow" / FLOW
    (original,) = [p for p in flow_dir.iterdir() if p.name.isdigit()]
    base_id = int(original.name)
    files = [(p.relative_to(original), p.read_bytes()) for p in original.rglob("*") if p.is_file()]
    ids = []
    for i in range(n_runs):
        run_id = str(base_id - (n_runs - 1 - i) * 1000)  # older clones get smaller ids and timestamps
        ids.append(run_id)
        if run_id == original.name:
            continue
        for rel, data in files:
            target = flow_dir / run_id / Path(str(rel).replace(original.name, run_id))
            target.parent.mkdir(parents=True, exist_ok=True)
            content = data.replace(original.name.encode(), run_id.encode())
            if rel.parts == ("_meta", "_self.json"):
                meta = json.loads(content)
                meta["ts_epoch"] -= (n_runs - 1 - i) * 1000
                content = json.dumps(meta).encode()
            target.write_bytes(content)
    return env, ids


def time_metaflow(python: str, n_runs: int, calls: int) -> Dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="mf-client-bench-"))
    try:
        env, ids = build_metaflow_history(python, scratch, n_runs)
        proc = subprocess.run(
            [python, "-c", MF_TIMER, FLOW, json.dumps(ids), str(calls)],
            env=env,
            cwd=str(scratch),
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"Metaflow client timing failed: {proc.stderr[-800:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- report ----------------------------------------------------------------------------------
def slope(results: Dict[int, Dict[str, float]], op: str) -> float:
    """Microseconds added per extra run in the history, between the smallest and largest size."""
    sizes = sorted(n for n in results if op in results[n])
    if len(sizes) < 2:
        return float("nan")
    lo, hi = sizes[0], sizes[-1]
    return (results[hi][op] - results[lo][op]) / (hi - lo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="100,1000,10000", help="cafstore history sizes")
    parser.add_argument("--metaflow-runs", default="100,1000", help="Metaflow history sizes ('' to skip)")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per cafstore operation")
    parser.add_argument("--metaflow-calls", type=int, default=50, help="timed calls per Metaflow operation")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    from cafstore.store import Store, StoreConfig

    sizes = sorted(int(s) for s in args.runs.split(",") if s)
    caf: Dict[int, Dict[str, float]] = {}
    work = Path(tempfile.mkdtemp(prefix="caf-client-bench-"))
    try:
        store = Store(work / "store", StoreConfig(durable=False))
        have = 0
        for n in sizes:
            t0 = time.perf_counter()
            extend_history(store, have, n)
            print(f"cafstore: wrote runs {have + 1}..{n} in {time.perf_counter() - t0:.1f}s", flush=True)
            have = n
            caf[n] = time_cafstore(store, n, args.calls)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mf: Dict[int, Dict[str, float]] = {}
    mf_note = ""
    mf_sizes = sorted(int(s) for s in args.metaflow_runs.split(",") if s)
    if mf_sizes:
        from _metaflow_env import ensure_metaflow

        env = ensure_metaflow()
        if not env.available:
            mf_note = f"Metaflow unavailable: {env.reason}, skipped"
        else:
            mf_note = f"Metaflow {env.version}"
            for n in mf_sizes:
                t0 = time.perf_counter()
                mf[n] = time_metaflow(env.python, n, args.metaflow_calls)
                print(f"metaflow: {n} runs built and timed in {time.perf_counter() - t0:.1f}s", flush=True)

    ops = ["latest_run", "Run()", "artifact", "run.data"]
    print(f"\nClient lookups, median microseconds per call ({mf_note or 'Metaflow not measured'})")
    print(f"{'history':>10}  " + "  ".join(f"{op:>14}" for op in ops) + "   tool")
    for n in sizes:
        print(f"{n:>10}  " + "  ".join(f"{caf[n][op]:>14.1f}" for op in ops) + "   cafstore")
    for n in mf_sizes:
        if n in mf:
            print(f"{n:>10}  " + "  ".join(f"{mf[n][op]:>14.1f}" for op in ops) + "   metaflow")
    worst = "latest_run (worst: namespace's only run is the oldest)"
    for n in sizes:
        print(f"cafstore worst-case latest_run at {n} runs: {caf[n][worst]:.0f} us")
    print("\nper-run scaling (us added per extra run in the history):")
    for op in ops:
        line = f"  {op:<12} cafstore {slope(caf, op):+.5f}"
        if len(mf) >= 2:
            line += f"   metaflow {slope(mf, op):+.3f}"
        print(line)
    if mf:
        print("\nratios metaflow/cafstore at equal history size:")
        for n in sorted(set(mf) & set(caf)):
            print(f"  {n} runs: " + ", ".join(f"{op} {mf[n][op] / caf[n][op]:.0f}x" for op in ops))
    if args.json:
        Path(args.json).write_text(json.dumps({"cafstore": caf, "metaflow": mf, "metaflow_note": mf_note}, indent=2))


if __name__ == "__main__":
    main()
