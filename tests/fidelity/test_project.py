"""``@project``: branch names, ``current``'s project fields and the run's system tags, chosen by the
decorator, the top-level ``--branch`` / ``--production`` options or the environment, as in Metaflow."""

from __future__ import annotations

import pytest
from shapes import render_flow

HEADER = "from cafstore import project\n\n\n@project(name='my_proj')"
RECORD = """
self.project = (current.project_name, current.branch_name, current.project_flow_name,
                current.is_production, current.is_user_branch)
"""


def project_flow(shape: str = "linear", header: str = HEADER) -> str:
    source = render_flow(shape, {"all": RECORD})
    # the decorator goes right above the class
    return source.replace("class FidelityFlow", header.split("\n")[-1] + "\nclass FidelityFlow").replace(
        "from cafstore import FlowSpec, step, current", "from cafstore import FlowSpec, step, current, project"
    )


CASES = [
    ([], [], {}, "user.tester", False, True),
    (["--branch", "feature_1"], [], {}, "test.feature_1", False, False),
    (["--production"], [], {}, "prod", True, False),
    (["--production", "--branch", "b2"], [], {}, "prod.b2", True, False),
    ([], [], {"METAFLOW_BRANCH": "from_env"}, "test.from_env", False, False),
    ([], [], {"CAFSTORE_PRODUCTION": "true"}, "prod", True, False),
    ([], ["--production"], {}, "prod", True, False),  # cafstore's run --production picks the prod branch too
]


@pytest.mark.parametrize("top, after, env, branch, production, user_branch", CASES)
def test_the_branch_comes_from_options_or_environment(lab, top, after, env, branch, production, user_branch):
    lab.write(project_flow())
    proc = lab.cli(*top, "run", *after, env=env)
    assert proc.returncode == 0, proc.stderr
    run = lab.latest()
    expected = ("my_proj", branch, f"my_proj.{branch}.FidelityFlow", production, user_branch)
    assert {task["project"].data for step in run for task in step} == {expected}
    assert {"project:my_proj", f"project_branch:{branch}"} <= set(run.system_tags)


@pytest.mark.parametrize("shape", ["branch", "nested_foreach"])
def test_every_task_of_a_project_run_sees_the_project(lab, shape):
    lab.write(project_flow(shape))
    assert lab.cli("--branch", "x", "run").returncode == 0
    expected = ("my_proj", "test.x", "my_proj.test.x.FidelityFlow", False, False)
    assert {task["project"].data for step in lab.latest() for task in step} == {expected}


@pytest.mark.parametrize(
    "header, top, says",
    [
        ("@project(name='Bad-Name')", [], "must contain only lowercase alphanumeric characters and underscores"),
        ("@project(name='p')", ["--branch", "No"], "branch name 'No' must contain only lowercase"),
        ("@project(name='p' * 129)", [], "too long: the maximum is 128"),
        ("@project()", [], "needs a name"),
        ("@project(name='p', branch='a')", ["--branch", "b"], "cannot pass --branch"),
    ],
)
def test_bad_project_names_are_refused_before_the_run_starts(lab, header, top, says):
    lab.write(project_flow(header=header))
    proc = lab.cli(*top, "run")
    assert proc.returncode == 1 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "Workflow starting" not in proc.stdout


def test_branch_options_exist_only_for_project_flows(lab):
    lab.write(render_flow("linear", {}))
    proc = lab.cli("--branch", "x", "run")
    assert proc.returncode == 2 and "No such option '--branch'" in proc.stderr


def test_users_cannot_forge_project_tags(lab):
    lab.write(project_flow())
    proc = lab.cli("run", "--tag", "project:other")
    assert proc.returncode == 2 and "project:" in proc.stderr


CONFIGURED = """
from cafstore import FlowSpec, step, current, project, Config, Parameter, config_expr


def from_project(ctx):
    # Metaflow sets the project's fields before parameter defaults are computed
    return current.project_name + ':' + current.branch_name


@project(name=config_expr('settings').project)
class FidelityFlow(FlowSpec):
    settings = Config('settings', default_value={'project': 'from_config'})
    tagged = Parameter('tagged', default=from_project)

    @step
    def start(self):
        assert current.project_name == 'from_config', current.project_name
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == '__main__':
    FidelityFlow()
"""


def test_the_project_name_can_come_from_a_config_and_defaults_see_the_project(lab):
    lab.run(CONFIGURED)
    run = lab.latest()
    assert "project:from_config" in run.system_tags
    assert run["start"].task["tagged"].data == "from_config:user.tester"
