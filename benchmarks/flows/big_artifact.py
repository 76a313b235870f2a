"""Benchmark flow: a large numpy array made in start, read in middle, read again in end.

The array holds ARRAY_BYTES of random float64 values (incompressible, so a store that
compresses gains nothing from it). The harness rewrites the ``ARRAY_BYTES = ...`` line
and the import line.
"""

from cafstore import FlowSpec, step

ARRAY_BYTES = 256 * 1024 * 1024


class BenchBigArtifactFlow(FlowSpec):
    @step
    def start(self):
        import numpy as np

        self.array = np.random.default_rng(0).random(ARRAY_BYTES // 8)
        self.next(self.middle)

    @step
    def middle(self):
        self.checksum = float(self.array[::4096].sum())
        self.next(self.end)

    @step
    def end(self):
        assert self.array.nbytes == ARRAY_BYTES
        print("bytes", self.array.nbytes, "checksum", self.checksum)


if __name__ == "__main__":
    BenchBigArtifactFlow()
