"""Many pushes and pulls in one process (a notebook, a long test session) keep no descriptor open:
no socket pool, LMDB environment or file per sync is left for the garbage collector to find."""

from __future__ import annotations

import gc
import os

import pytest

from cafstore.remote import config
from cafstore.remote.pull import pull
from cafstore.remote.push import push
from cafstore.store import Store


def _open_descriptors() -> list:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed already
            pass
    return sorted(out)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
def test_repeated_pushes_and_pulls_leave_no_descriptor_open(tmp_path, anne_store, as_user, s3_options):
    as_user("anne")
    anne = Store(anne_store)

    def sync(i: int) -> None:
        """Push anne's runs to a new remote, pull them into a new store: every object travels."""
        url = f"s3://{s3_options['bucket']}/{s3_options['prefix']}/{i}"
        config.add(anne, f"r{i}", url, s3_options["endpoint_url"])
        push(anne, f"r{i}")
        bob = Store(tmp_path / f"bob{i}")
        config.add(bob, "origin", url, s3_options["endpoint_url"])
        assert len(pull(bob, "origin").runs_sent) == 2
        bob.close()

    sync(0)  # the first one opens what stays open for good: anne's index
    gc.collect()
    gc.disable()  # what is released must be released by the code, not found later by the collector
    try:
        before = _open_descriptors()
        for i in range(1, 3):  # two more, each a new remote and a new store
            sync(i)
        after = _open_descriptors()
    finally:
        gc.enable()
    assert after == before
    anne.close()
