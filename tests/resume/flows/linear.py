"""start -> a -> b -> c -> end. FAIL_AT=<step> makes that step fail; every task says that it ran."""

import os

from cafstore import FlowSpec, Parameter, current, step


def ran():
    print(f"RAN {current.step_name} pid={os.getpid()} origin_run_id={current.origin_run_id}")
    if os.environ.get("FAIL_AT") == current.step_name:
        raise RuntimeError(f"{current.step_name} fails (FAIL_AT)")


class LinearFlow(FlowSpec):
    alpha = Parameter("alpha", default=1, help="A number the steps carry along.")

    @step
    def start(self):
        ran()
        self.start_value = self.alpha * 10
        self.next(self.a)

    @step
    def a(self):
        ran()
        self.a_value = "a-v1"
        self.next(self.b)

    @step
    def b(self):
        ran()
        self.b_value = "b-v1"
        self.next(self.c)

    @step
    def c(self):
        ran()
        self.c_value = "c-v1"
        self.next(self.end)

    @step
    def end(self):
        ran()
        self.summary = f"{self.alpha} {self.start_value} {self.a_value} {self.b_value} {self.c_value}"


if __name__ == "__main__":
    LinearFlow()
