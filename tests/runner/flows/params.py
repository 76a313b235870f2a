"""Every kind of parameter."""

import json

from cafstore import FlowSpec, IncludeFile, JSONType, Parameter, current, step

CALLS = []


def stamp_default(ctx):
    return "made-for-" + ctx.parameter_name


class ParamFlow(FlowSpec):
    animal = Parameter("creature", help="An animal", required=True)
    count = Parameter("count", help="How many", default=1)
    ratio = Parameter("ratio", type=float)
    flag = Parameter("flag", type=bool, default=False)
    mapping = Parameter("mapping", type=JSONType, default='{"some": "default"}')
    names = Parameter("names", separator=",", default="x,y")
    dashed = Parameter("max-size", default=5)
    stamp = Parameter("stamp", default=stamp_default)
    text = IncludeFile("text", help="A text file")
    blob = IncludeFile("blob", is_text=False)
    latin = IncludeFile("latin", encoding="latin-1")

    @step
    def start(self):
        print(
            "values",
            json.dumps(
                {
                    "animal": self.animal,
                    "count": self.count,
                    "ratio": self.ratio,
                    "flag": self.flag,
                    "mapping": self.mapping,
                    "names": self.names,
                    "dashed": self.dashed,
                    "stamp": self.stamp,
                    "text": self.text,
                    "blob": None if self.blob is None else list(self.blob),
                    "latin": self.latin,
                },
                sort_keys=True,
            ),
        )
        print("types", type(self.count).__name__, type(self.flag).__name__)
        print("parameter_names", sorted(current.parameter_names))
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        print("after join", self.animal, self.count)


if __name__ == "__main__":
    ParamFlow()
