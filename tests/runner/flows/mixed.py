"""A foreach inside one branch of a static split, with a two-step body; a foreach over a tuple."""

from cafstore import FlowSpec, step


class MixedFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.fan, self.other)

    @step
    def fan(self):
        self.items = ("x", "y", "z")
        self.next(self.first, foreach="items")

    @step
    def first(self):
        self.word = self.input * 2
        self.next(self.second)

    @step
    def second(self):
        self.word = self.word.upper() + str(self.index)
        self.next(self.fan_join)

    @step
    def fan_join(self, inputs):
        self.words = [i.word for i in inputs]
        self.next(self.join)

    @step
    def other(self):
        self.words = ["other"]
        self.next(self.join)

    @step
    def join(self, inputs):
        self.all = inputs.fan_join.words + inputs.other.words
        self.next(self.end)

    @step
    def end(self):
        print(self.all)


if __name__ == "__main__":
    MixedFlow()
