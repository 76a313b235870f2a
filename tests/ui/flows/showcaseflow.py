"""A flow with everything the UI shows: a foreach, a retried task, previews of many kinds, and text that
would run as script if a page did not escape it."""

import os
import zlib

import numpy as np

from cafstore import FlowSpec, Parameter, retry, step

XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def tiny_png() -> bytes:
    """A 2x2 red PNG, made here so the test ships no binary."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = (2).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class ShowcaseFlow(FlowSpec):
    label = Parameter("label", default=XSS)

    @step
    def start(self):
        self.payload = XSS
        self.numbers = list(range(500))
        self.table = {"a": 1, "<b>": XSS}
        self.matrix = np.arange(12, dtype=np.float64).reshape(3, 4)
        self.picture = tiny_png()
        self.items = ["x", "y", "z"]
        print("start says", XSS)
        self.next(self.fan, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @step
    def fan(self):
        marker = os.path.join(os.environ["SHOWCASE_MARKERS"], f"fan-{self.index}")
        if self.input == "y" and not os.path.exists(marker):
            open(marker, "w").close()
            raise ValueError("first attempt fails on purpose " + XSS)
        self.word = self.input * 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.words = [i.word for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        print("done", self.words)


if __name__ == "__main__":
    ShowcaseFlow()
