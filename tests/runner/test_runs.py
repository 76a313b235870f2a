"""The run ref, tags, the run-id file, concurrent runs, spawn mode, `cafstore run`."""

from __future__ import annotations

import subprocess
import sys
import threading

from helpers import EXAMPLES, Stored, env_for, fsck_ok, run_flow


def test_run_ref_contents_and_unicode_tags(tmp_path):
    store = tmp_path / "store"
    id_file = tmp_path / "run-id"
    done = run_flow(
        "linear.py",
        "--tag",
        "crazy test",
        "--tag",
        "δοκιμή ✓",
        "--tag",
        "crazy test",
        "--run-id-file",
        str(id_file),
        store=store,
    )
    assert done.returncode == 0, done.stderr
    assert id_file.read_text() == "1"
    view = Stored(store)
    run = view.run("LinearFlow")
    assert run["user_tags"] == ["crazy test", "δοκιμή ✓"]
    assert "user:tester" in run["system_tags"] and "runtime:dev" in run["system_tags"]
    assert any(t.startswith("python_version:3.") for t in run["system_tags"])
    assert any(t.startswith("cafstore_version:") for t in run["system_tags"])
    assert run["user"] == "tester" and run["code_path"] == "linear.py" and run["pid"] > 0
    assert view.store.get_ref("flows/LinearFlow")["name"] == "LinearFlow"
    view.close()


def test_run_id_file_is_written_before_the_first_task(tmp_path):
    flow = tmp_path / "peek.py"
    id_file = tmp_path / "id.txt"
    flow.write_text(
        "from cafstore import FlowSpec, step\n"
        "class PeekFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        f"        print('seen', open({str(id_file)!r}).read())\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    PeekFlow()\n"
    )
    done = run_flow(flow, "--run-id-file", str(id_file), store=tmp_path / "store")
    assert done.returncode == 0 and "seen 1" in done.stdout


def test_two_runs_at_once_never_mix(tmp_path):
    store = tmp_path / "store"
    results = []

    def go(n):
        results.append(run_flow("sleepers.py", "--n", str(n), "--seconds", "0.2", store=store))

    threads = [threading.Thread(target=go, args=(n,)) for n in (3, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    view = Stored(store)
    runs = view.runs("SleepFlow")
    assert sorted(r["run_id"] for r in runs) == [1, 2]
    widths = set()
    for run in runs:
        tasks = view.tasks("SleepFlow", run["run_id"])
        assert all(t["run_id"] == run["run_id"] for t in tasks)
        naps = [t for t in tasks if t["step"] == "nap"]
        widths.add(len(naps))
        join = view.task("SleepFlow", "join", run["run_id"])
        assert len(join["parents"]) == len(naps)
        assert set(join["parents"]) == {
            view.store.get_ref(f"tasks/SleepFlow/{run['run_id']:010d}/nap/{t['task_id']:010d}") for t in naps
        }
        assert view.data(view.task("SleepFlow", "end", run["run_id"]))["n"] == len(naps)
    assert widths == {3, 5}
    view.close()
    assert fsck_ok(store)


def test_spawn_start_method(tmp_path):
    store = tmp_path / "store"
    done = run_flow("branches.py", store=store, env={"CAFSTORE_START_METHOD": "spawn"})
    assert done.returncode == 0, done.stderr
    assert "['a2', 'b', 'c'] ['a2', 'b', 'c'] 3 a2 same" in done.stdout
    done = run_flow("failing.py", store=store, env={"CAFSTORE_START_METHOD": "spawn"})
    assert done.returncode == 1 and "ZeroDivisionError" in done.stderr


def test_cafstore_run_equals_python_flow_run(tmp_path):
    store = tmp_path / "store"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cafstore.cli.main",
            "--store",
            str(store),
            "run",
            str(EXAMPLES / "counter.py"),
            "--tag",
            "via cli",
        ],
        capture_output=True,
        text=True,
        env=env_for(),
        cwd=str(tmp_path),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "The final count is 2" in done.stdout
    view = Stored(store)
    assert view.run("CounterFlow")["user_tags"] == ["via cli"]
    view.close()
    done = subprocess.run(
        [sys.executable, "-m", "cafstore.cli.main", "--store", str(store), "fsck"],
        capture_output=True,
        text=True,
        env=env_for(),
        timeout=60,
    )
    assert done.returncode == 0 and "ok" in done.stdout


def test_tasks_run_in_the_flow_directory_with_callers_pythonpath(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "helper_mod.py").write_text("VALUE = 41\n")
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "data.txt").write_text("beside the flow")
    (flows / "where.py").write_text(
        "import os\n"
        "from cafstore import FlowSpec, step\n"
        "class WhereFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        import helper_mod\n"
        "        self.value = helper_mod.VALUE + 1\n"
        "        self.text = open('data.txt').read()\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    WhereFlow()\n"
    )
    store = tmp_path / "store"
    done = run_flow(flows / "where.py", store=store, cwd=tmp_path, env={"PYTHONPATH": str(lib)})
    assert done.returncode == 0, done.stderr
    view = Stored(store)
    assert view.data(view.task("WhereFlow", "start"))["text"] == "beside the flow"
    view.close()
