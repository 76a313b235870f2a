"""Nested foreach with a static branch inside the inner one."""

from cafstore import FlowSpec, step


class NestedFlow(FlowSpec):
    @step
    def start(self):
        self.xs = [10, 20]
        self.next(self.outer, foreach="xs")

    @step
    def outer(self):
        self.x = self.input
        self.ys = ["a", "b", "c"]
        self.next(self.inner, foreach="ys")

    @step
    def inner(self):
        self.pair = (self.x, self.input, self.index)
        self.stack = self.foreach_stack()
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = 1
        self.next(self.branch_join)

    @step
    def right(self):
        self.side = 2
        self.next(self.branch_join)

    @step
    def branch_join(self, inputs):
        self.side = sum(i.side for i in inputs)
        self.merge_artifacts(inputs)
        self.seen_input = self.input  # still this task's item after the inner join
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.pairs = [i.pair for i in inputs]
        self.sides = [i.side for i in inputs]
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.pairs = [p for i in inputs for p in i.pairs]
        self.indexes = [i.index for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        print(len(self.pairs))


if __name__ == "__main__":
    NestedFlow()
