"""@retry, @catch and @timeout, stacked in both orders with @step."""

import time

from cafstore import FlowSpec, catch, current, retry, step, timeout


class DecoratedFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky, self.caught, self.slow, self.plain)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        self.attempt_seen = current.retry_count
        print("attempt", current.retry_count)
        if current.retry_count < 2:
            raise ValueError("flaky %d" % current.retry_count)
        self.next(self.join)

    @step
    @catch(var="err")
    def caught(self):
        self.partial = "lost"
        raise KeyError("boom")
        self.next(self.join)

    @catch(var="slow_err", print_exception=False)
    @timeout(seconds=1)
    @step
    def slow(self):
        time.sleep(30)
        self.next(self.join)

    @step
    def plain(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.err_text = str(inputs.caught.err)
        self.partial_seen = hasattr(inputs.caught, "partial")
        self.slow_type = inputs.slow.slow_err.type
        self.attempt_seen = inputs.flaky.attempt_seen
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DecoratedFlow()
