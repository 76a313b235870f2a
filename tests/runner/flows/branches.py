"""A static split into three branches, one of them two steps long."""

from cafstore import FlowSpec, step


class BranchFlow(FlowSpec):
    @step
    def start(self):
        self.shared = "same"
        self.next(self.a, self.b, self.c)

    @step
    def a(self):
        self.value = "a"
        self.next(self.a2)

    @step
    def a2(self):
        self.value += "2"
        self.next(self.join)

    @step
    def b(self):
        self.value = "b"
        self.next(self.join)

    @step
    def c(self):
        self.value = "c"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.order = [inp.value for inp in inputs]
        self.by_name = [inputs.a2.value, inputs.b.value, inputs.c.value]
        self.n = len(inputs)
        self.first = inputs[0].value
        self.shared = inputs[0].shared
        self.next(self.end)

    @step
    def end(self):
        print(self.order, self.by_name, self.n, self.first, self.shared)


if __name__ == "__main__":
    BranchFlow()
