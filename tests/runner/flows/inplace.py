"""In-place changes of inherited artifacts, small and large, and what current says inside a run."""

from cafstore import FlowSpec, current, step


class InPlaceFlow(FlowSpec):
    @step
    def start(self):
        self.small = [1]
        self.big = list(range(400_000))  # pickles to about 2 MiB: over the 1 MiB recheck limit
        self.big_assigned = list(range(400_000))
        self.untouched = {"a": 1}
        self.read_only = [1, 2, 3]
        self.next(self.change)

    @step
    def change(self):
        self.small.append(2)
        self.big.append(-1)  # not persisted: large, read, never reassigned
        self.big_assigned.append(-1)
        self.big_assigned = self.big_assigned
        total = sum(self.read_only)
        self.info = {
            "tags": current.tags,
            "namespace": current.namespace,
            "retry": current.retry_count,
            "running": current.is_running_flow,
            "total": total,
        }
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    InPlaceFlow()
