"""@retry, @catch, @timeout in a real run."""

from __future__ import annotations

from helpers import Stored, fsck_ok, run_flow


def test_retry_catch_timeout(tmp_path):
    store = tmp_path / "store"
    done = run_flow("decorated.py", store=store)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Task failed (attempt 1 of 3): ValueError: flaky 0. Retrying now." in done.stdout
    assert "Task failed (attempt 2 of 3)" in done.stdout
    view = Stored(store)
    flaky = view.task("DecoratedFlow", "flaky")
    assert flaky["attempt"] == 2 and flaky["status"] == "ok"
    # earlier attempts hang off the final record, with their logs and exception
    first_retry = view.store.get_record(flaky["previous_attempt"])
    first = view.store.get_record(first_retry["previous_attempt"])
    assert (first["attempt"], first["status"], first["previous_attempt"]) == (0, "failed", None)
    assert "flaky 0" in first["exception"]["message"] and "attempt 0" in view.log(first)
    assert "ZeroDivision" not in first["exception"]["traceback"] and "flaky" in first["exception"]["traceback"]
    join = view.data(view.task("DecoratedFlow", "join"))
    assert join["err_text"].rstrip().endswith("KeyError: 'boom'")  # str() of the wrapper: the traceback
    assert join["partial_seen"] is True  # as in Metaflow: what the caught attempt set before raising is kept
    assert join["slow_type"] == "metaflow.plugins.timeout_decorator.TimeoutException"
    assert join["attempt_seen"] == 2
    caught = view.task("DecoratedFlow", "caught")
    assert caught["status"] == "ok" and "KeyError: 'boom'" in view.log(caught, "stderr")
    slow = view.task("DecoratedFlow", "slow")
    assert "TimeoutException" not in view.log(slow, "stderr")  # print_exception=False
    view.close()
    assert fsck_ok(store)


def test_timeout_without_catch_fails_the_run_quickly(tmp_path):
    flow = tmp_path / "slow.py"
    flow.write_text(
        "import time\n"
        "from cafstore import FlowSpec, step, timeout\n"
        "class SlowFlow(FlowSpec):\n"
        "    @timeout(seconds=1)\n"
        "    @step\n"
        "    def start(self):\n"
        "        time.sleep(60)\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    SlowFlow()\n"
    )
    done = run_flow(flow, store=tmp_path / "store", timeout=30)
    assert done.returncode == 1
    assert "timed out" in done.stderr and "1 second" in done.stderr and "slow.py:7" in done.stderr


def test_retry_waits_between_attempts(tmp_path):
    flow = tmp_path / "later.py"
    flow.write_text(
        "from cafstore import FlowSpec, current, retry, step\n"
        "class LaterFlow(FlowSpec):\n"
        "    @retry(times=1, minutes_between_retries=0.01)\n"
        "    @step\n"
        "    def start(self):\n"
        "        if current.retry_count == 0:\n"
        "            raise RuntimeError('not yet')\n"
        "        self.next(self.end)\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    LaterFlow()\n"
    )
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = run_flow(flow, store=tmp_path / "store")
    elapsed = time.time() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr
    assert "Retrying in 0.6 s." in done.stdout and elapsed >= 0.6
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert cpu < elapsed  # the scheduler slept through the delay instead of spinning
