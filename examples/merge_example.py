from cafstore import FlowSpec, step


class MergeExampleFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.branch1, self.branch2)

    @step
    def branch1(self):
        self.branch_name = "branch1"
        self.value = 10
        self.next(self.join)

    @step
    def branch2(self):
        self.branch_name = "branch2"
        self.value = 20
        self.next(self.join)

    @step
    def join(self, inputs):
        from cafstore import merge_artifacts

        # cafstore: collecting divergent artifacts into lists is opt-in via
        # collect=True. Without it, merge_artifacts behaves like Metaflow's
        # self.merge_artifacts(inputs) and fails on artifacts whose values
        # differ between branches.
        merge_artifacts(self, inputs, collect=True)  # Now `self.branch_name`, `self.value` become lists

        print(self.branch_name)  # ['branch1', 'branch2']
        print(self.value)  # [10, 20]

        self.next(self.end)

    @step
    def end(self):
        print("Done.")


if __name__ == "__main__":
    MergeExampleFlow()
