"""``python -m cafstore.runner.execution.executors.spawn_main RESULT_FD``: one task in a fresh interpreter.

Used by :class:`~cafstore.runner.execution.executors.local.LocalSpawnExecutor` where fork is
unavailable (or ``CAFSTORE_START_METHOD=spawn``).  Reads a pickled
:class:`~cafstore.runner.execution.spec.TaskSpec` from stdin, imports the flow file by
path as ``__main__`` (as ``python flow.py`` would, without starting its
command line), runs the task and writes the result to RESULT_FD.
"""

from __future__ import annotations

import os
import pickle
import sys


def main(argv: list) -> None:
    result_fd = int(argv[1])
    spec = pickle.load(sys.stdin.buffer)
    from cafstore.runner.execution.executors.local import prepare_child, release_store, send_result
    from cafstore.runner.execution.spec import TaskResult

    status = 0
    try:
        prepare_child(spec)
        try:
            from cafstore.runner.execution.flowfile import load_flow_class

            flow_cls = load_flow_class(spec.flow_file, spec.flow_class)
        except BaseException as exc:  # noqa: BLE001 - reported as the task's failure
            from cafstore.runner.execution.task import _describe

            result = TaskResult(spec.task_id, spec.step, spec.attempt, "failed", error=_describe(exc), pid=os.getpid())
        else:
            from cafstore.runner.execution.task import execute

            result = execute(spec, flow_cls)
        release_store()
        send_result(result_fd, result)
    except BaseException:  # noqa: BLE001
        status = 70
    finally:
        sys.stdout.flush()
        os._exit(status)


if __name__ == "__main__":
    main(sys.argv)
