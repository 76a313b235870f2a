"""The fork executor loads a foreach's values once, in the scheduler, for its tasks to inherit.

Observable from outside: each item's ``__setstate__`` appends the pid of the process that
unpickled it to a file. Under fork the whole list is unpickled by one process (the
scheduler); under spawn, or when the list is over the preload cap, by every task.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.runner.helpers import run_flow

FLOW = textwrap.dedent(
    """
    import os
    from cafstore import FlowSpec, step

    LOG = os.environ["PRELOAD_PROBE_LOG"]


    class Item:
        def __init__(self, n):
            self.n = n

        def __getstate__(self):
            return {"n": self.n}

        def __setstate__(self, state):
            self.n = state["n"]
            if self.n == 0:  # once per unpickled list
                with open(LOG, "a") as out:
                    out.write(f"{os.getpid()}\\n")


    class PreloadFlow(FlowSpec):
        @step
        def start(self):
            self.items = [Item(n) for n in range(6)]
            self.next(self.outer, foreach="items")

        @step
        def outer(self):
            self.n = self.input.n
            self.inner_items = [self.n * 10 + k for k in range(2)]
            self.next(self.inner, foreach="inner_items")

        @step
        def inner(self):
            self.value = (self.input, self.foreach_stack()[0][2].n)
            self.next(self.inner_join)

        @step
        def inner_join(self, inputs):
            self.values = sorted(i.value for i in inputs)
            self.next(self.outer_join)

        @step
        def outer_join(self, inputs):
            self.all = sorted(v for i in inputs for v in i.values)
            self.next(self.end)

        @step
        def end(self):
            print("ALL", self.all)


    if __name__ == "__main__":
        PreloadFlow()
    """
)
EXPECTED = sorted((n * 10 + k, n) for n in range(6) for k in range(2))


def _run(tmp_path: Path, *args: str, env=None) -> list:
    flow = tmp_path / "preload_flow.py"
    flow.write_text(FLOW)
    log = tmp_path / "unpickled-by.txt"
    done = run_flow(flow, *args, store=tmp_path / "store", env={"PRELOAD_PROBE_LOG": str(log), **(env or {})})
    assert done.returncode == 0, done.stderr
    assert f"ALL {EXPECTED}" in done.stdout
    return log.read_text().split()


def test_forked_tasks_inherit_the_list_loaded_once(tmp_path):
    pids = _run(tmp_path, "--executor", "fork")
    # start pickles the list without unpickling it; the scheduler unpickles it once; the six
    # outer tasks and twelve inner ones (whose stack names the outer item) take it inherited.
    assert len(pids) == 1


def test_spawned_tasks_each_load_the_list(tmp_path):
    pids = _run(tmp_path, "--executor", "spawn")
    assert len(pids) == 6 + 12 and len(set(pids)) == 18


def test_a_list_over_the_cap_is_left_to_the_tasks(tmp_path):
    pids = _run(tmp_path, "--executor", "fork", env={"CAFSTORE_PRELOAD_MAX_BYTES": "0"})
    assert len(pids) == 18
