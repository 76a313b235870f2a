"""A linear flow: artifacts flow down, private attributes and deleted ones do not."""

from cafstore import FlowSpec, step


class LinearFlow(FlowSpec):
    """Three steps in a row."""

    GREETING = "hi"

    @step
    def start(self):
        """Begin."""
        self.count = 1
        self.doomed = "gone soon"
        self._scratch = "never stored"
        print("start", self.GREETING)
        self.next(self.middle)

    @step
    def middle(self):
        self.count += 1
        del self.doomed
        self.words = ["a"]
        self.next(self.end)

    @step
    def end(self):
        self.words.append("b")  # changed in place, never reassigned
        print("count", self.count, hasattr(self, "doomed"), hasattr(self, "_scratch"))


if __name__ == "__main__":
    LinearFlow()
