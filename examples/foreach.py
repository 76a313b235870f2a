from cafstore import FlowSpec, step


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.creatures = ["bird", "mouse", "dog"]
        self.next(self.analyze_creatures, foreach="creatures")

    @step
    def analyze_creatures(self):
        print("Analyzing", self.input)
        self.creature = self.input
        self.score = len(self.creature)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.best = max(inputs, key=lambda x: x.score).creature
        self.next(self.end)

    @step
    def end(self):
        print(self.best, "won!")


if __name__ == "__main__":
    ForeachFlow()
