"""merge_artifacts in every mode; MODE picks the join's behaviour."""

import os

from cafstore import FlowSpec, merge_artifacts, step
from cafstore.exception import MetaflowException, UnhandledInMergeArtifactsException

MODE = os.environ.get("MODE", "metaflow")


class MergeFlow(FlowSpec):
    @step
    def start(self):
        self.same = "everywhere"  # unchanged in every branch
        self.count = 0
        self.next(self.one, self.two)

    @step
    def one(self):
        self.count += 1
        self.only_one = "from one"  # only in one branch
        self.label = "one"
        self.increment = 1
        self.next(self.join)

    @step
    def two(self):
        self.count += 2
        self.label = "two"
        self.increment = 2
        self.next(self.join)

    @step
    def join(self, inputs):
        if MODE == "metaflow":
            self.count = max(i.count for i in inputs)  # set before: wins
            self.label = "joined"
            self.merge_artifacts(inputs, exclude=["increment"])
        elif MODE == "conflict":
            self.merge_artifacts(inputs)
        elif MODE == "caught":
            try:
                merge_artifacts(self, inputs)
            except UnhandledInMergeArtifactsException as exc:
                self.unhandled = sorted(exc.artifact_names)
                assert isinstance(exc, MetaflowException)
            self.merge_artifacts(inputs, exclude=["count", "label", "increment"])
        elif MODE == "collect":
            merge_artifacts(self, inputs, collect=True, exclude=["only_one"])
        elif MODE == "include":
            self.merge_artifacts(inputs, include=["same", "only_one"])
        elif MODE == "include_missing":
            self.merge_artifacts(inputs, include=["same", "nope"])
        elif MODE == "both":
            self.merge_artifacts(inputs, include=["same"], exclude=["count"])
        elif MODE == "collect_partial":
            merge_artifacts(self, inputs, collect=True)
        self.next(self.end)

    @step
    def end(self):
        if MODE == "not_join":
            self.merge_artifacts([])
        print("merged")


if __name__ == "__main__":
    MergeFlow()
