"""Reads another flow's latest run through the client, as the step's namespace shows it."""

from cafstore import Flow, FlowSpec, get_namespace, step


class ReaderFlow(FlowSpec):
    @step
    def start(self):
        self.ns = get_namespace()
        latest = Flow("TagFlow").latest_run
        self.seen = latest.pathspec if latest is not None else None
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ReaderFlow()
