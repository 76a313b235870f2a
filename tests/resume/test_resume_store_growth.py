"""Resume clones by reference: a big artifact upstream of the failure costs nothing to reuse.

The issue's case as it stands: a 512 MiB array made in ``start``, a failure in the step after
it, the fix, ``resume``. The store must grow by less than 1 MiB, measured like ``du``
(allocated blocks), the LMDB index included. On the 2-core development VM the whole test
takes about 5 s (the run that writes the array most of it; the resume about 0.3 s), well
inside the CI budget, so it runs at full size everywhere.
"""

from __future__ import annotations

import shutil
import time

import pytest
from resume_helpers import both, reused, started, store_bytes

MIB = 2**20
SIZE_MIB = 512


def test_resume_after_a_failure_below_a_big_artifact_grows_the_store_by_under_1_mib(flow, store_path, client):
    pytest.importorskip("numpy")
    big = flow("big.py")
    try:
        first = big("run", "--mib", str(SIZE_MIB), env={"FAIL_AT": "process"}, timeout=600)
        assert first.returncode == 1, both(first)
        before = store_bytes(store_path)
        assert before["total"] > SIZE_MIB * MIB  # the array is really in there

        began = time.perf_counter()
        out = big("resume", timeout=600)
        seconds = time.perf_counter() - began
        assert out.returncode == 0, both(out)
        after = store_bytes(store_path)
        assert reused(out.stdout) == {"start": 1} and started(out.stdout) == {"process": 1, "end": 1}

        grew, index_grew = after["total"] - before["total"], after["index"] - before["index"]
        print(
            f"\n{SIZE_MIB} MiB artifact: resume took {seconds:.2f} s; the store grew by {grew / 1024:.0f} KiB "
            f"({index_grew / 1024:.0f} KiB of it the LMDB index)"
        )
        assert grew < MIB, f"the store grew by {grew} bytes on resume ({index_grew} in the LMDB index)"

        run = client.Run("BigFlow/2")
        assert run.successful and run.data.last == SIZE_MIB * MIB // 8 - 1
        assert run["start"].task.data.big.nbytes == SIZE_MIB * MIB
    finally:
        shutil.rmtree(store_path, ignore_errors=True)  # pytest keeps old tmp dirs: not 512 MiB of them
