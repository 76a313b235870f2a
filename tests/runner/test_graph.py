"""Tests for cafstore.runner.graph: parsing flow graphs and the rules they obey.

Malformed flows mark the line the error must point at with ``# <-``; the
helper checks that the error names that file, line and step, so a message
that points somewhere vaguely right does not pass.
"""

import importlib
import json
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cafstore.exception import GraphError
from cafstore.runner.graph import (
    FlowGraph,
    StepNode,
    graph_from_class,
    graph_from_source,
    validate,
)

HEADER = "from metaflow import FlowSpec, step\n\n\nclass F(FlowSpec):\n"


def flow(body: str) -> str:
    """Source of a flow class ``F`` whose class body is ``body``."""
    return HEADER + textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", "    ")


def parse(body: str) -> FlowGraph:
    return graph_from_source(flow(body), "F", "flow.py")


def marked_line(source: str) -> int:
    lines = [i for i, text in enumerate(source.splitlines(), 1) if "# <-" in text]
    assert len(lines) == 1, "mark exactly one line with # <-"
    return lines[0]


def expect_error(body: str, step: str, *words: str) -> GraphError:
    """validate() must fail at the ``# <-`` line, naming ``step`` and ``words``."""
    source = flow(body)
    line = marked_line(source)
    graph = graph_from_source(source, "F", "flow.py")
    with pytest.raises(GraphError) as info:
        validate(graph)
    err = info.value
    msg = str(err)
    assert (err.file, err.line, err.step) == ("flow.py", line, step), msg
    assert msg.startswith(f"flow.py:{line}: "), msg
    assert f"'{step}'" in msg, msg
    for word in words:
        assert word in msg, msg
    assert "\n" not in msg  # one paragraph
    return err


# --------------------------------------------------------------------------
# Valid flows: the shapes of the seed flows

HELLO = '''
@step
def start(self):
    """Starting point"""
    print("This is start step")
    self.next(self.hello)

@step
def hello(self):
    """Just saying hi"""
    print("Hello World!")
    self.next(self.end)

@step
def end(self):
    """Finish line"""
    print("This is end step")
'''

COUNTER = """
count = Parameter('count', help="Number", default=1)

@step
def start(self):
    self.count = 0
    self.next(self.add)

@step
def add(self):
    self.count += 1
    self.next(self.end)

@step
def end(self):
    self.count += 1
"""

BRANCH = """
@step
def start(self):
    self.count = 0
    self.next(self.add_one, self.add_two)

@step
def add_one(self):
    self.count += 1
    self.next(self.join)

@step
def add_two(self):
    self.count += 2
    self.next(self.join)

@step
def join(self, inputs):
    self.count = max(inp.count for inp in inputs)
    self.merge_artifacts(inputs, exclude=['increment'])
    self.next(self.end)

@step
def end(self):
    print(self.count)
"""

FOREACH = """
@step
def start(self):
    self.creatures = ['bird', 'mouse', 'dog']
    self.next(self.analyze_creatures, foreach='creatures')

@step
def analyze_creatures(self):
    self.creature = self.input
    self.score = len(self.creature)
    self.next(self.join)

@step
def join(self, inputs):
    self.best = max(inputs, key=lambda x: x.score).creature
    self.next(self.end)

@step
def end(self):
    print(self.best, 'won!')
"""

NESTED_FOREACH = """
@step
def start(self):
    self.xs = [1, 2]
    self.next(self.outer, foreach='xs')

@step
def outer(self):
    self.ys = [self.input, self.input * 10]
    self.next(self.inner, foreach='ys')

@step
def inner(self):
    self.v = self.input
    self.next(self.join_inner)

@step
def join_inner(self, inputs):
    self.v = sum(i.v for i in inputs)
    self.next(self.join_outer)

@step
def join_outer(self, inputs):
    self.v = sum(i.v for i in inputs)
    self.next(self.end)

@step
def end(self):
    pass
"""

BRANCH_IN_FOREACH = """
@step
def start(self):
    self.xs = [1, 2, 3]
    self.next(self.fan, foreach='xs')

@step
def fan(self):
    self.next(self.left, self.right)

@step
def left(self):
    self.next(self.merge)

@step
def right(self):
    self.next(self.merge)

@step
def merge(self, inputs):
    self.next(self.collect)

@step
def collect(self, inputs):
    self.next(self.end)

@step
def end(self):
    pass
"""

CLASSIFIER = """
@step
def start(self):
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = datasets.load_wine(return_X_y=True)
    self.train_data, self.test_data, self.train_labels, self.test_labels = \\
        train_test_split(X, y, test_size=0.2, random_state=0)

    self.next(self.train_knn, self.train_svm)

@step
def train_knn(self):
    from sklearn.neighbors import KNeighborsClassifier

    self.model = KNeighborsClassifier()
    self.model.fit(self.train_data, self.train_labels)
    self.next(self.choose_model)

@step
def train_svm(self):
    from sklearn import svm

    self.model = svm.SVC(kernel='poly')
    self.model.fit(self.train_data, self.train_labels)
    self.next(self.choose_model)

@step
def choose_model(self, inputs):
    def score(inp):
        return inp.model, inp.model.score(inp.test_data, inp.test_labels)

    self.results = sorted(map(score, inputs), key=lambda x: -x[1])
    self.model = self.results[0][0]
    self.next(self.end)

@step
def end(self):
    print("\\n".join("%s %f" % res for res in self.results))
"""


def summary(graph: FlowGraph) -> dict:
    return {n.name: (n.type, n.in_funcs, n.split_parents, n.matching_join, n.is_inside_foreach) for n in graph}


def test_hello_world():
    graph = parse(HELLO)
    validate(graph)
    assert list(graph.nodes) == ["start", "hello", "end"]
    assert [n.type for n in graph.sorted_nodes()] == ["start", "linear", "end"]
    assert graph["hello"].doc == "Just saying hi"
    assert graph["hello"].in_funcs == ["start"]
    assert graph["start"].out_funcs == ["hello"]
    assert graph["hello"].lineno == flow(HELLO).splitlines().index("    def hello(self):") + 1
    assert graph["start"].next_line == flow(HELLO).splitlines().index("        self.next(self.hello)") + 1
    assert "hello" in graph and "nope" not in graph and len(graph) == 3
    assert [n.name for n in graph] == ["start", "hello", "end"]


def test_linear_counter_with_parameter():
    graph = parse(COUNTER)
    validate(graph)
    assert summary(graph) == {
        "start": ("start", [], [], None, False),
        "add": ("linear", ["start"], [], None, False),
        "end": ("end", ["add"], [], None, False),
    }


def test_static_branch_and_join():
    graph = parse(BRANCH)
    validate(graph)
    assert summary(graph) == {
        "start": ("split", [], [], "join", False),
        "add_one": ("linear", ["start"], ["start"], None, False),
        "add_two": ("linear", ["start"], ["start"], None, False),
        "join": ("join", ["add_one", "add_two"], ["start"], None, False),
        "end": ("end", ["join"], [], None, False),
    }
    assert graph["join"].num_args == 1 and graph["join"].arg_names == ["inputs"]


def test_foreach_and_join():
    graph = parse(FOREACH)
    validate(graph)
    assert graph["start"].foreach_param == "creatures"
    assert summary(graph) == {
        "start": ("foreach", [], [], "join", False),
        "analyze_creatures": ("linear", ["start"], ["start"], None, True),
        "join": ("join", ["analyze_creatures"], ["start"], None, False),
        "end": ("end", ["join"], [], None, False),
    }


def test_nested_foreach():
    graph = parse(NESTED_FOREACH)
    validate(graph)
    assert summary(graph) == {
        "start": ("foreach", [], [], "join_outer", False),
        "outer": ("foreach", ["start"], ["start"], "join_inner", True),
        "inner": ("linear", ["outer"], ["start", "outer"], None, True),
        "join_inner": ("join", ["inner"], ["start", "outer"], None, True),
        "join_outer": ("join", ["join_inner"], ["start"], None, False),
        "end": ("end", ["join_outer"], [], None, False),
    }


def test_static_branch_inside_foreach():
    graph = parse(BRANCH_IN_FOREACH)
    validate(graph)
    assert summary(graph) == {
        "start": ("foreach", [], [], "collect", False),
        "fan": ("split", ["start"], ["start"], "merge", True),
        "left": ("linear", ["fan"], ["start", "fan"], None, True),
        "right": ("linear", ["fan"], ["start", "fan"], None, True),
        "merge": ("join", ["left", "right"], ["start", "fan"], None, True),
        "collect": ("join", ["merge"], ["start"], None, False),
        "end": ("end", ["collect"], [], None, False),
    }


def test_classifier_train_flow():
    graph = parse(CLASSIFIER)
    validate(graph)
    assert graph["start"].type == "split"
    assert graph["start"].out_funcs == ["train_knn", "train_svm"]
    assert graph["start"].matching_join == "choose_model"
    assert graph["choose_model"].in_funcs == ["train_knn", "train_svm"]
    assert [n.name for n in graph.sorted_nodes()] == ["start", "train_knn", "train_svm", "choose_model", "end"]


def test_static_branch_straight_to_join_is_allowed():
    graph = parse(
        """
        @step
        def start(self):
            self.next(self.a, self.join)
        @step
        def a(self):
            self.next(self.join)
        @step
        def join(self, inputs):
            self.next(self.end)
        @step
        def end(self):
            pass
        """
    )
    validate(graph)
    assert graph["join"].in_funcs == ["start", "a"]
    assert graph["start"].matching_join == "join"


def test_decorators_in_any_order_and_spelling():
    graph = parse(
        """
        @retry(times=2)
        @step
        def start(self):
            self.next(self.a)
        @cafstore.step
        @catch(var='e')
        def a(self):
            self.next(self.b)
        @timeout(seconds=5)
        @metaflow.step
        @cache
        def b(self):
            self.next(self.end)
        def helper(self):
            return 1
        @staticmethod
        def util():
            pass
        @step
        def end(self):
            pass
        """
    )
    validate(graph)
    assert list(graph.nodes) == ["start", "a", "b", "end"]
    assert graph["start"].decorators == ["retry", "step"]
    assert graph["b"].decorators == ["timeout", "step", "cache"]


def test_sorted_nodes_is_topological_and_stable_whatever_the_source_order():
    graph = parse(
        """
        @step
        def end(self):
            pass
        @step
        def join(self, inputs):
            self.next(self.end)
        @step
        def b(self):
            self.next(self.join)
        @step
        def a(self):
            self.next(self.a2)
        @step
        def a2(self):
            self.next(self.join)
        @step
        def start(self):
            self.next(self.a, self.b)
        """
    )
    validate(graph)
    assert [n.name for n in graph.sorted_nodes()] == ["start", "b", "a", "a2", "join", "end"]
    assert graph["join"].in_funcs == ["b", "a2"]  # in graph order, not source order


def test_describe_and_to_dict():
    source = flow('"""Counts creatures."""\n' + FOREACH)
    graph = graph_from_source(source, "F", "some/dir/foreach.py")
    text = graph.describe()
    assert text.startswith("F\n    Counts creatures.\n")
    assert "Step start\n    => analyze_creatures (foreach over 'creatures')" in text
    assert "Step join\n    => end" in text
    assert text.index("Step start") < text.index("Step analyze_creatures") < text.index("Step end")
    graph = graph_from_source(flow(HELLO), "F", "some/dir/hello.py")
    assert "Step hello\n    Just saying hi\n    => end" in graph.describe()
    data = json.loads(json.dumps(graph.to_dict()))
    assert data["name"] == "F" and data["file"] == "hello.py"
    assert [s["name"] for s in data["steps"]] == ["start", "hello", "end"]
    assert data["steps"][1]["next"] == ["end"] and data["steps"][1]["doc"] == "Just saying hi"


def test_parsing_does_not_validate():
    # show must work on a half-written flow: only validate() complains.
    graph = parse(
        """
        @step
        def start(self):
            self.next(self.nowhere)
        """
    )
    assert isinstance(graph["start"], StepNode)
    assert "=> nowhere" in graph.describe()
    with pytest.raises(GraphError):
        validate(graph)


def test_inherited_steps_from_a_base_class_in_the_same_source():
    source = HEADER.replace("class F(FlowSpec):\n", "") + textwrap.dedent(
        """
        class Base(FlowSpec):
            @step
            def start(self):
                self.next(self.work)
            @step
            def work(self):
                self.next(self.end)
            @step
            def end(self):
                pass

        class Child(Base):
            @step
            def work(self):
                self.next(self.extra)
            @step
            def extra(self):
                self.next(self.end)
        """
    )
    graph = graph_from_source(source, "Child")
    validate(graph)
    assert list(graph.nodes) == ["start", "work", "end", "extra"]
    assert graph["work"].out_funcs == ["extra"]
    assert [n.name for n in graph.sorted_nodes()] == ["start", "work", "extra", "end"]


# --------------------------------------------------------------------------
# Malformed flows: one per rule (and the variants users actually write)


def test_rule1_no_start():
    body = """
    @step
    def begin(self):
        self.next(self.end)
    @step
    def end(self):
        pass
    """
    source = flow(body)
    with pytest.raises(GraphError) as info:
        validate(graph_from_source(source, "F", "flow.py"))
    line = source.splitlines().index("class F(FlowSpec):") + 1
    assert (info.value.line, info.value.step) == (line, "start")
    assert str(info.value).startswith(f"flow.py:{line}: ") and "'start'" in str(info.value)


def test_rule2_no_end():
    body = """
    @step
    def start(self):
        self.next(self.finish)
    @step
    def finish(self):
        self.next(self.start)
    """
    source = flow(body)
    with pytest.raises(GraphError) as info:
        validate(graph_from_source(source, "F", "flow.py"))
    assert info.value.step == "end" and "has no step named 'end'" in str(info.value)
    assert info.value.line == source.splitlines().index("class F(FlowSpec):") + 1


def test_rule3_step_without_next():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.hello)
        @step
        def hello(self):  # <-
            print("hi")
        @step
        def end(self):
            pass
        """,
        "hello",
        "has no self.next",
    )


def test_rule3_next_inside_if():
    expect_error(
        """
        @step
        def start(self):
            if self.x:
                self.next(self.a)  # <-
            else:
                self.next(self.end)
        @step
        def a(self):
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "start",
        "must be the last line",
    )


def test_rule3_next_inside_for():
    expect_error(
        """
        @step
        def start(self):
            for x in range(3):
                self.next(self.end)  # <-
        @step
        def end(self):
            pass
        """,
        "start",
        "must be the last line",
    )


def test_rule3_next_followed_by_code():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.end)  # <-
            print("after")
        @step
        def end(self):
            pass
        """,
        "start",
        "must be the last line",
    )


def test_rule4_misspelled_target_suggests_closest():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.hello)
        @step
        def hello(self):
            self.next(self.edn)  # <-
        @step
        def end(self):
            pass
        """,
        "hello",
        "'edn'",
        "Did you mean self.end?",
        "start, hello, end",
    )


def test_rule4_target_is_not_an_attribute_of_self():
    expect_error(
        """
        @step
        def start(self):
            self.next('end')  # <-
        @step
        def end(self):
            pass
        """,
        "start",
        "attributes of self",
    )


def test_rule4_target_is_a_method_without_step():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.helper)  # <-
        def helper(self):
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "start",
        "decorate it with @step",
    )


def test_rule5_end_has_next():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.end)
        @step
        def end(self):
            self.next(self.start)  # <-
        """,
        "end",
        "Remove the self.next",
    )


def test_rule6_start_takes_inputs():
    expect_error(
        """
        @step
        def start(self, inputs):  # <-
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "start",
        "def start(self):",
    )


def test_rule7_join_without_inputs():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.join)
        @step
        def b(self):
            self.next(self.join)
        @step
        def join(self):  # <-
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "join",
        "'a', 'b'",
        "def join(self, inputs):",
    )


def test_rule7_inputs_on_a_linear_step():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.middle)
        @step
        def middle(self, inputs):  # <-
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "middle",
        "nothing to join",
        "def middle(self):",
    )


def test_rule7_inputs_on_one_branch_of_a_static_split():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.ja)
        @step
        def b(self):
            self.next(self.jb)
        @step
        def ja(self, inputs):  # <-
            self.next(self.end)
        @step
        def jb(self, inputs):
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "ja",
        "only 'a' leads to it",
        "split 'start'",
    )


def test_rule7_end_reached_from_two_branches():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.end)
        @step
        def b(self):
            self.next(self.end)
        @step
        def end(self):  # <-
            pass
        """,
        "end",
        "'a', 'b'",
        "Add a join step",
    )


def test_end_cannot_be_a_join():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.end)
        @step
        def b(self):
            self.next(self.end)
        @step
        def end(self, inputs):  # <-
            pass
        """,
        "end",
        "end cannot be a join",
    )


def test_rule8_too_many_arguments():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.join)
        @step
        def b(self):
            self.next(self.join)
        @step
        def join(self, inputs, extra):  # <-
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "join",
        "2 arguments",
        "inputs, extra",
    )


def test_rule9_foreach_with_two_targets():
    expect_error(
        """
        @step
        def start(self):
            self.xs = [1]
            self.next(self.a, self.b, foreach='xs')  # <-
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
            pass
        """,
        "start",
        "static split",
    )


def test_rule9_foreach_not_a_string_literal():
    expect_error(
        """
        @step
        def start(self):
            name = 'xs'
            self.next(self.a,
                      foreach=name)  # <-
        @step
        def a(self):
            self.next(self.join)
        @step
        def join(self, inputs):
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "start",
        "string literal",
    )


def test_rule9_next_without_targets():
    expect_error(
        """
        @step
        def start(self):
            self.next()  # <-
        @step
        def end(self):
            pass
        """,
        "start",
        "names no step",
    )


def test_rule9_unknown_keyword():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.end, num_parallel=4)  # <-
        @step
        def end(self):
            pass
        """,
        "start",
        "num_parallel=",
        "foreach",
    )


def test_rule9_same_target_twice():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.a, self.a)  # <-
        @step
        def a(self):
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "start",
        "twice",
    )


def test_rule10_join_of_two_different_splits():
    err = expect_error(
        """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.a1, self.a2)
        @step
        def a1(self):
            self.next(self.mixed)
        @step
        def a2(self):
            self.next(self.join_a)
        @step
        def b(self):
            self.next(self.mixed)
        @step
        def mixed(self, inputs):  # <-
            self.next(self.end)
        @step
        def join_a(self, inputs):
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "mixed",
        "split in step 'a'",
        "split in step 'start'",
    )
    assert "parentheses" in str(err)


def test_rule10_split_closed_by_two_joins():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.outer_a, self.outer_b)
        @step
        def outer_a(self):
            self.next(self.p, self.q, self.r, self.s)
        @step
        def p(self):
            self.next(self.j1)
        @step
        def q(self):
            self.next(self.j1)
        @step
        def r(self):
            self.next(self.j2)
        @step
        def s(self):
            self.next(self.j2)
        @step
        def j1(self, inputs):
            self.next(self.outer_join)
        @step
        def j2(self, inputs):  # <-
            self.next(self.outer_join)
        @step
        def outer_b(self):
            self.next(self.outer_join)
        @step
        def outer_join(self, inputs):
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "j2",
        "split 'outer_a'",
        "two joins",
        "'j1'",
    )


def test_rule10_foreach_straight_to_join():
    expect_error(
        """
        @step
        def start(self):
            self.xs = [1, 2]
            self.next(self.join, foreach='xs')  # <-
        @step
        def join(self, inputs):
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "start",
        "straight to the join 'join'",
    )


def test_rule10_join_that_splits_again():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.a, self.b)
        @step
        def a(self):
            self.next(self.join)
        @step
        def b(self):
            self.next(self.join)
        @step
        def join(self, inputs):
            self.next(self.c, self.d)  # <-
        @step
        def c(self):
            self.next(self.j2)
        @step
        def d(self):
            self.next(self.j2)
        @step
        def j2(self, inputs):
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "join",
        "also splits",
    )


def test_rule11_cycle():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.a)
        @step
        def a(self):
            self.next(self.b)
        @step
        def b(self):
            self.next(self.a, self.end)  # <-
        @step
        def end(self):
            pass
        """,
        "b",
        "a -> b -> a",
        "cycle",
    )


def test_rule11_step_going_to_itself():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.again)
        @step
        def again(self):
            self.next(self.again)  # <-
        @step
        def end(self):
            pass
        """,
        "again",
        "cycle",
    )


def test_rule12_unreachable_step():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.end)
        @step
        def orphan(self):  # <-
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "orphan",
        "can never run",
    )


def test_rule13_end_inside_a_foreach():
    expect_error(
        """
        @step
        def start(self):
            self.xs = [1, 2]
            self.next(self.each, foreach='xs')
        @step
        def each(self):
            self.next(self.end)
        @step
        def end(self):  # <-
            pass
        """,
        "end",
        "foreach started by step 'start'",
        "still open",
    )


def test_rule13_inner_split_joined_but_outer_foreach_not():
    expect_error(
        """
        @step
        def start(self):
            self.xs = [1, 2]
            self.next(self.fan, foreach='xs')
        @step
        def fan(self):
            self.next(self.left, self.right)
        @step
        def left(self):
            self.next(self.merge)
        @step
        def right(self):
            self.next(self.merge)
        @step
        def merge(self, inputs):
            self.next(self.end)
        @step
        def end(self):  # <-
            pass
        """,
        "end",
        "foreach started by step 'start'",
    )


def test_rule14_duplicate_step():
    expect_error(
        """
        @step
        def start(self):
            self.next(self.end)
        @step
        def end(self):
            pass
        @step
        def start(self):  # <-
            self.next(self.end)
        """,
        "start",
        "defined twice",
    )


@pytest.mark.parametrize("name", ["input", "index", "foreach_stack", "merge_artifacts", "next", "_private"])
def test_rule15_reserved_step_names(name):
    err = expect_error(
        f"""
        @step
        def start(self):
            self.next(self.{name})
        @step
        def {name}(self):  # <-
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        name,
        "cannot be named",
    )
    assert ("'_'" in str(err)) == name.startswith("_")


def test_step_without_self():
    expect_error(
        """
        @step
        def start():  # <-
            self.next(self.end)
        @step
        def end(self):
            pass
        """,
        "start",
        "def start(self):",
    )


def test_syntax_error_names_file_and_line():
    source = flow(HELLO).replace('print("Hello World!")', 'print("Hello World!"')
    with pytest.raises(GraphError) as info:
        graph_from_source(source, "F", "broken.py")
    assert info.value.file == "broken.py" and info.value.line > 0
    assert str(info.value).startswith(f"broken.py:{info.value.line}: ")
    assert "not valid Python" in str(info.value)


def test_missing_class():
    with pytest.raises(GraphError, match="no class 'Nope'.*classes found: F"):
        graph_from_source(flow(HELLO), "Nope", "flow.py")


def test_first_violation_wins():
    # Two mistakes: the earlier rule (a misspelled target) is reported, not
    # its consequence (end unreachable).
    graph = parse(
        """
        @step
        def start(self):
            self.next(self.ed)
        @step
        def end(self):
            pass
        """
    )
    with pytest.raises(GraphError, match="Did you mean self.end"):
        validate(graph)


# --------------------------------------------------------------------------
# graph_from_class on real files

API = """
class FlowSpec:
    pass

def step(f):
    return f

def retry(**kw):
    return lambda f: f
"""

BASE = '''
import gtest_api
from gtest_api import FlowSpec, step


class BaseFlow(FlowSpec):
    """Shared beginning."""

    @step
    def start(self):
        self.next(self.prepare)

    @gtest_api.step
    def prepare(self):
        self.next(self.end)

    @step
    def end(self):
        pass
'''

CHILD = '''
from gtest_api import FlowSpec, retry, step
from gtest_base import BaseFlow


class Mixin:
    @step
    def not_a_flow_step(self):
        pass


class ChildFlow(Mixin, BaseFlow):
    """Adds training."""

    @step
    @retry(times=3)
    def prepare(self):
        self.xs = [1, 2]
        self.next(self.train, foreach='xs')

    @retry(times=1)
    @step
    def train(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)
'''


@pytest.fixture
def flow_modules(tmp_path, monkeypatch):
    for name, text in (("gtest_api", API), ("gtest_base", BASE), ("gtest_child", CHILD)):
        (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("gtest_api", "gtest_base", "gtest_child"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield tmp_path
    for name in ("gtest_api", "gtest_base", "gtest_child"):
        sys.modules.pop(name, None)


def test_graph_from_class_in_a_real_file(flow_modules):
    base = importlib.import_module("gtest_base")
    graph = graph_from_class(base.BaseFlow)
    validate(graph)
    assert graph.name == "BaseFlow" and graph.doc == "Shared beginning."
    assert graph.file == str(flow_modules / "gtest_base.py")
    assert graph["prepare"].lineno == BASE.splitlines().index("    def prepare(self):") + 1
    assert [n.type for n in graph.sorted_nodes()] == ["start", "linear", "end"]


def test_graph_from_class_inherits_and_overrides_steps(flow_modules):
    child = importlib.import_module("gtest_child")
    graph = graph_from_class(child.ChildFlow)
    validate(graph)
    # Mixin is not a FlowSpec subclass: its steps are not part of the flow.
    assert list(graph.nodes) == ["start", "prepare", "end", "train", "join"]
    assert graph["prepare"].type == "foreach" and graph["prepare"].matching_join == "join"
    assert graph["prepare"].file == str(flow_modules / "gtest_child.py")
    assert graph["start"].file == str(flow_modules / "gtest_base.py")
    assert graph["train"].lineno == CHILD.splitlines().index("    def train(self):") + 1
    assert graph["train"].is_inside_foreach
    assert graph.file == str(flow_modules / "gtest_child.py")


def test_graph_from_class_errors_point_at_the_right_file(flow_modules):
    (flow_modules / "gtest_bad.py").write_text(
        "from gtest_base import BaseFlow\nfrom gtest_api import step\n\n\n"
        "class BadFlow(BaseFlow):\n    @step\n    def prepare(self):\n        self.next(self.nowhere)\n"
    )
    try:
        bad = importlib.import_module("gtest_bad")
        with pytest.raises(GraphError) as info:
            validate(graph_from_class(bad.BadFlow))
        assert info.value.file == str(flow_modules / "gtest_bad.py")
        assert (info.value.line, info.value.step) == (8, "prepare")
        assert "Did you mean" not in str(info.value)  # nothing close to 'nowhere'
    finally:
        sys.modules.pop("gtest_bad", None)


class FlowSpec:
    """A stand-in base: graph_from_class recognises flows by this name."""


def step(func):
    return func


def _first_local_flow():
    class LocalFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    return LocalFlow


def _second_local_flow():
    class LocalFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.middle)

        @step
        def middle(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    return LocalFlow


def test_graph_from_class_tells_apart_classes_with_the_same_name():
    first, second = graph_from_class(_first_local_flow()), graph_from_class(_second_local_flow())
    validate(first)
    validate(second)
    assert list(first.nodes) == ["start", "end"]
    assert list(second.nodes) == ["start", "middle", "end"]
    assert second.file == __file__


# --------------------------------------------------------------------------
# Property tests: random well-nested flows

ITEM = st.recursive(
    st.just(("step",)),
    lambda inner: st.one_of(
        st.tuples(st.just("split"), st.lists(st.lists(inner, min_size=1, max_size=3), min_size=2, max_size=4)),
        st.tuples(st.just("foreach"), st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=10,
)
SHAPE = st.lists(ITEM, max_size=4)


class Shape:
    """Turns a nested shape into steps, remembering what the graph must say."""

    def __init__(self, items: list) -> None:
        self.steps: dict = {}  # name -> {"targets": [...], "foreach": str|None, "join": bool}
        self.joins: dict = {}  # split -> its join
        self.inside_foreach: set = set()
        self.count = 0
        self._add("end", [])
        first = self._block(items, "end", False, first_name="start")
        if first != "start":
            self._add("start", [first])

    def _add(self, name, targets, foreach=None, join=False, inside=False):
        self.steps[name] = {"targets": list(targets), "foreach": foreach, "join": join}
        if inside:
            self.inside_foreach.add(name)

    def _new(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def _block(self, items, after, inside, first_name=None):
        for i in reversed(range(len(items))):
            after = self._item(items[i], after, inside, first_name if i == 0 else None)
        return after

    def _item(self, item, after, inside, name):
        if item[0] == "step":
            name = name or self._new("s")
            self._add(name, [after], inside=inside)
            return name
        join = self._new("join")
        self._add(join, [after], join=True, inside=inside)
        name = name or self._new(item[0])
        if item[0] == "split":
            firsts = [self._block(branch, join, inside) for branch in item[1]]
            self._add(name, firsts, inside=inside)
        else:
            self._add(name, [self._block(item[1], join, True)], foreach="items", inside=inside)
        self.joins[name] = join
        return name


def render(steps: dict, order: list) -> str:
    lines = ["from metaflow import FlowSpec, step", "", "", "class GenFlow(FlowSpec):"]
    for name in order:
        spec = steps[name]
        lines += ["    @step", f"    def {name}(self{', inputs' if spec['join'] else ''}):"]
        if not spec["targets"]:
            lines.append("        pass")
            continue
        if spec["foreach"]:
            lines.append("        self.items = [1, 2, 3]")
        args = ", ".join(f"self.{t}" for t in spec["targets"])
        if spec["foreach"]:
            args += f", foreach={spec['foreach']!r}"
        lines.append(f"        self.next({args})")
    return "\n".join(lines) + "\n"


def check_consistent(graph: FlowGraph) -> None:
    """Invariants any accepted graph must satisfy."""
    order = [n.name for n in graph.sorted_nodes()]
    assert order[0] == "start" and order[-1] == "end" and sorted(order) == sorted(graph.nodes)
    position = {name: i for i, name in enumerate(order)}
    closed = {}
    for node in graph:
        assert all(position[p] < position[node.name] for p in node.in_funcs)
        assert node.in_funcs == sorted(node.in_funcs, key=position.get)
        for target in node.out_funcs:
            assert node.name in graph[target].in_funcs
        if node.type in ("split", "foreach"):
            join = graph[node.matching_join]
            assert join.type == "join" and join.split_parents[-1] == node.name
            assert join.split_parents[:-1] == node.split_parents
            closed[node.matching_join] = node.name
        else:
            assert node.matching_join is None
    joins = {n.name for n in graph if n.type == "join"}
    assert set(closed) == joins  # each join closes exactly one split
    assert graph["end"].split_parents == [] and graph["start"].split_parents == []
    json.dumps(graph.to_dict())


def well_nested(steps: dict) -> bool:
    """Independent oracle: does series-parallel reduction shrink the flow to one step?

    A different algorithm from the one under test: contract a linear step into
    its only successor, and a split (or foreach) whose branches are single steps
    all going to one join that nothing else reaches into a single step.  A valid
    flow shrinks to a lone start; anything else gets stuck.
    """
    if "start" not in steps or "end" not in steps:
        return False
    nodes = {}
    for name, spec in steps.items():
        outs = spec["targets"]
        if (name == "end") != (not outs) or len(set(outs)) != len(outs):
            return False
        if any(t not in steps for t in outs) or (spec["foreach"] and len(outs) != 1):
            return False
        kind = "end" if not outs else "foreach" if spec["foreach"] else "split" if len(outs) > 1 else "linear"
        if spec["join"] and (kind in ("split", "foreach", "end") or name == "start"):
            return False
        nodes[name] = {"join": spec["join"], "kind": kind, "outs": list(outs)}

    def ins(name):
        return sorted(m for m in nodes if name in nodes[m]["outs"])

    def contract(u, v, removed):
        nodes[u] = {"join": nodes[u]["join"], "kind": nodes[v]["kind"], "outs": nodes[v]["outs"]}
        for name in removed:
            del nodes[name]

    changed = True
    while changed:
        changed = False
        for u in list(nodes):
            if u not in nodes:
                continue
            node = nodes[u]
            if node["kind"] == "linear":
                v = node["outs"][0]
                if v != u and not nodes[v]["join"] and ins(v) == [u] and v != "start":
                    contract(u, v, [v])
                    changed = True
            elif node["kind"] in ("split", "foreach"):
                branches, joins = [], set()
                for o in node["outs"]:
                    if nodes[o]["join"]:
                        joins.add(o)  # a branch going straight to the join
                    elif ins(o) == [u] and nodes[o]["kind"] == "linear":
                        branches.append(o)
                        joins.add(nodes[o]["outs"][0])
                    else:
                        joins.add(None)
                if len(joins) != 1 or None in joins:
                    continue
                (j,) = joins
                if not nodes[j]["join"] or j in branches or (node["kind"] == "foreach" and not branches):
                    continue
                if ins(j) != sorted(branches + ([u] if j in node["outs"] else [])):
                    continue
                contract(u, j, branches + [j])
                changed = True
    return list(nodes) == ["start"] and nodes["start"]["kind"] == "end"


def reachable(steps: dict) -> set:
    seen, todo = {"start"}, ["start"]
    while todo:
        for target in steps[todo.pop()]["targets"]:
            if target in steps and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=SHAPE, data=st.data())
def test_generated_valid_flows_are_accepted(shape, data):
    built = Shape(shape)
    order = data.draw(st.permutations(sorted(built.steps)))
    assert well_nested(built.steps)  # the oracle agrees the generator makes valid flows
    graph = graph_from_source(render(built.steps, order), "GenFlow", "gen.py")
    validate(graph)
    check_consistent(graph)
    for name, spec in built.steps.items():
        node = graph[name]
        assert node.out_funcs == spec["targets"]
        assert node.is_inside_foreach == (name in built.inside_foreach), name
        if name in built.joins:
            assert node.matching_join == built.joins[name]
            assert node.type == ("foreach" if spec["foreach"] else "split")
        elif spec["join"]:
            assert node.type == "join"
        else:
            assert node.type == {"start": "start", "end": "end"}.get(name, "linear")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=SHAPE, data=st.data())
def test_retargeted_flows_are_accepted_or_rejected_cleanly(shape, data):
    """Retarget one self.next: validate() must agree with the oracle, and fail only with GraphError."""
    built = Shape(shape)
    steps = {name: dict(spec, targets=list(spec["targets"])) for name, spec in built.steps.items()}
    assert well_nested(steps)
    source_name = data.draw(st.sampled_from(sorted(n for n in steps if steps[n]["targets"])))
    targets = steps[source_name]["targets"]
    index = data.draw(st.integers(0, len(targets) - 1))
    targets[index] = data.draw(st.sampled_from(sorted(steps) + ["missing_step"]))
    if data.draw(st.booleans()):
        # Drop what became unreachable, so the split/join rules get exercised
        # rather than "step can never run" every time.
        keep = reachable(steps) | {"end"}
        steps = {name: spec for name, spec in steps.items() if name in keep}
    source = render(steps, sorted(steps))
    graph = graph_from_source(source, "GenFlow", "gen.py")
    try:
        validate(graph)
    except GraphError as err:
        assert not well_nested(steps), str(err)
        assert err.file == "gen.py" and 1 <= err.line <= len(source.splitlines())
        assert err.step in graph or err.step in ("start", "end")
        assert str(err).startswith(f"gen.py:{err.line}: ")
    else:
        assert well_nested(steps), source
        check_consistent(graph)
