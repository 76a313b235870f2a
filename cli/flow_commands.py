"""A flow's own command line: ``python flow.py [--no-pylint] [--store PATH] [--namespace NS] COMMAND``.

``run`` runs the flow, ``show`` prints its steps, ``logs``/``dump``/``tag``
come from the client; with no command the graph is checked and the help
printed.  Every mistake (graph, option, parameter) is printed as one
paragraph on stderr with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List, NoReturn, Optional, Tuple

import click

from cafstore.cli import checks
from cafstore.cli.config_options import config_options, keep_origin_configs, read_flow_configs
from cafstore.cli.flow_options import (
    add_project_options,
    executor_option,
    metaflow_top_options,
    parameter_options,
)
from cafstore.cli.show_commands import show_format_option, show_graph
from cafstore.exception import CafstoreError
from cafstore.runner.authoring.parameters import flow_parameters
from cafstore.runner.authoring.project import has_project, resolve_project
from cafstore.runner.reuse.hook import reuse_factory


class FlowState:
    """What the group's options and the flow class give every command."""

    def __init__(self, flow_cls: type, store_path: Optional[str], namespace: Optional[str]) -> None:
        self.flow_cls = flow_cls
        self.store_path = store_path
        self.namespace = namespace
        self.project_options: Tuple[Optional[str], bool] = (None, False)  # --branch, --production (@project)
        self.quiet = False  # --quiet: no banner, no headers (Metaflow's echo goes silent)
        self._graph: Any = None

    @property
    def graph(self) -> Any:
        if self._graph is None:
            from cafstore.runner.graph import graph_from_class

            self._graph = graph_from_class(self.flow_cls)
        return self._graph

    @property
    def store(self) -> Any:
        """The store the client commands (logs, dump, tag) read."""
        from cafstore.store import Store
        from cafstore.store.discover import discover_path

        return Store(discover_path(explicit=self.store_path))

    def existing_store(self) -> Any:
        """The store ``logs``/``dump``/``tag`` read: reading never creates one (NotFound if there is none)."""
        from cafstore.client.connection import store_at
        from cafstore.store.discover import discover_path

        return store_at(discover_path(explicit=self.store_path))

    def checked_graph(self) -> Any:
        """The graph, after every rule of the graph, the decorators and the parameters passed."""
        from cafstore.runner.authoring.decorators import check_options
        from cafstore.runner.authoring.parameters import check_declarations
        from cafstore.runner.graph import validate

        validate(self.graph)
        check_options(self.flow_cls, self.graph)
        check_declarations(self.flow_cls, self.graph)
        return self.graph


def build_cli(flow_cls: type) -> click.Group:
    """The click group of ``flow_cls``."""

    @click.group(
        invoke_without_command=True,
        help=(flow_cls.__doc__ or f"The flow {flow_cls.__name__}."),
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    @click.option("--pylint/--no-pylint", default=False, help="Accepted for Metaflow compatibility; ignored.")
    @click.option(
        "--store",
        "store_path",
        metavar="PATH",
        help="Store directory (default: $CAFSTORE_HOME, else the nearest .cafstore/ upward).",
    )
    @click.option(
        "--namespace",
        metavar="NS",
        default=None,
        help="Namespace for client calls made by the steps (empty: the global namespace).",
    )
    @click.option(
        "--with",
        "with_specs",
        multiple=True,
        metavar="DECORATOR[:OPTION=VALUE,...]",
        help="Add a step decorator to every step that lacks it, e.g. --with retry:times=3 (repeatable).",
    )
    @metaflow_top_options
    @config_options
    @click.pass_context
    def group(
        ctx: click.Context,
        pylint: bool,
        store_path: Optional[str],
        namespace: Optional[str],
        config_files: Any = (),
        config_values: Any = (),
        with_specs: Tuple[str, ...] = (),
        quiet: bool = False,
        **_ignored: Any,
    ) -> None:
        from cafstore.runner.authoring import mutators

        read_flow_configs(flow_cls, config_files, config_values)
        mutators.pre_mutate(flow_cls)  # once the configurations are known, as Metaflow does
        if with_specs:
            from cafstore.runner.authoring.with_option import apply_specs

            apply_specs(flow_cls, list(with_specs))
        mutators.mutate(flow_cls)
        parameter_options(ctx.command, flow_cls)  # a mutator may have added or removed parameters
        state = ctx.obj = FlowState(flow_cls, store_path, namespace)
        state.project_options = (_ignored.get("project_branch"), bool(_ignored.get("project_production")))
        state.quiet = quiet
        if ctx.invoked_subcommand is None:
            state.checked_graph()
            click.echo(ctx.get_help())

    if has_project(flow_cls):
        add_project_options(group)

    @group.command(help="Run the flow.")
    @click.option(
        "--tag",
        "tags",
        multiple=True,
        metavar="TAG",
        callback=checks.user_tags,
        help="Tag the run (repeatable; not user:, production: or another system prefix).",
    )
    @click.option(
        "--max-workers",
        type=int,
        default=None,
        metavar="N",
        help="Tasks running at once [default: 16, or $CAFSTORE_RUN_MAX_WORKERS].",
    )
    @click.option(
        "--max-num-splits",
        type=int,
        default=None,
        metavar="N",
        help="Widest foreach allowed [default: 100, or $CAFSTORE_RUN_MAX_NUM_SPLITS].",
    )
    @click.option(
        "--run-id-file", metavar="FILE", default=None, help="Write the run id to FILE before the first task starts."
    )
    @click.option("--production", is_flag=True, help="Run in the flow's production namespace (production:<token>).")
    @click.option(
        "--authorize",
        metavar="TOKEN",
        default=None,
        help="The production token someone shared with you (needed once; implies --production).",
    )
    @click.option(
        "--generate-new-token",
        is_flag=True,
        help="Start a fresh production namespace with a new token (implies --production).",
    )
    @click.option(
        "--cache",
        "use_cache",
        is_flag=True,
        help="Reuse any earlier task with the same step code and inputs instead of running it.",
    )
    @executor_option
    @click.pass_obj
    def run(
        state: FlowState,
        tags: List[str],
        max_workers: Optional[int],
        max_num_splits: Optional[int],
        run_id_file: Optional[str],
        production: bool,
        authorize: Optional[str],
        generate_new_token: bool,
        use_cache: bool,
        executor: Optional[str],
        **params: Optional[str],
    ) -> int:
        from cafstore.runner.execution.launch import run_flow

        graph = state.checked_graph()
        values = {name[len("param__") :]: value for name, value in params.items()}
        by_name = {param.name: values.get(attr) for attr, param in flow_parameters(flow_cls)}
        namespace, system_tags = state.namespace, _project_tags(flow_cls, state, production)
        if production or authorize is not None or generate_new_token:
            from cafstore.client.production import resolve_production_namespace
            from cafstore.schema import current_user as username

            prod = resolve_production_namespace(
                state.store, flow_cls.__name__, username(), authorize, generate_new_token
            )
            click.echo(prod.message)
            system_tags.append(str(prod))
            namespace = str(prod) if namespace is None else namespace  # steps' client calls see production
        return run_flow(
            flow_cls,
            graph,
            state.store_path,
            namespace,
            tags,
            max_workers,
            max_num_splits,
            run_id_file,
            by_name,
            extra_system_tags=system_tags,
            reuse=reuse_factory(flow_cls, graph, None, use_cache, _say),
            executor=executor,
        )

    @group.command(
        help="Resume a run: reuse every task that succeeded (by hash, nothing copied) and run the "
        "rest with the current code. STEP: re-run from that step on."
    )
    @click.argument("step_name", metavar="[STEP]", required=False)
    @click.option(
        "--origin-run-id",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="The run to resume [default: your latest run of this flow].",
    )
    @click.option(
        "--tag", "tags", multiple=True, metavar="TAG", callback=checks.user_tags, help="Tag the new run (repeatable)."
    )
    @click.option("--max-workers", type=int, default=None, metavar="N", help="Tasks running at once.")
    @click.option("--max-num-splits", type=int, default=None, metavar="N", help="Widest foreach allowed.")
    @click.option("--run-id-file", metavar="FILE", default=None, help="Write the new run id to FILE.")
    @click.option("--cache", "use_cache", is_flag=True, help="Also reuse earlier tasks with the same key.")
    @executor_option
    @click.pass_obj
    def resume(
        state: FlowState,
        step_name: Optional[str],
        origin_run_id: Optional[int],
        tags: List[str],
        max_workers: Optional[int],
        max_num_splits: Optional[int],
        run_id_file: Optional[str],
        use_cache: bool,
        executor: Optional[str],
        **params: Optional[str],
    ) -> int:
        from cafstore.exception import ParameterError
        from cafstore.runner.execution.launch import run_flow
        from cafstore.runner.reuse.resume import ResumePlan, find_origin, origin_parameters
        from cafstore.schema import current_user as username

        by_attr = dict(flow_parameters(flow_cls))
        given = sorted(by_attr[name[len("param__") :]].option for name, value in params.items() if value is not None)
        if given:
            raise ParameterError(
                f"Parameters cannot change on resume ({', '.join(given)} given): the reused tasks were computed "
                "with the origin run's values, which the new run keeps. Start a new run with `run` instead."
            )
        graph = state.checked_graph()
        store = state.store
        origin = find_origin(store, flow_cls.__name__, username(), origin_run_id)
        plan = ResumePlan(store, graph, origin, step_name)
        values = origin_parameters(store, flow_cls, origin)
        keep_origin_configs(flow_cls, values)
        _say(f"Resuming {plan.origin_pathspec}" + (f" from step {step_name!r}." if step_name else "."))
        return run_flow(
            flow_cls,
            graph,
            state.store_path,
            state.namespace,
            tags,
            max_workers,
            max_num_splits,
            run_id_file,
            {},
            params=values,
            extra_system_tags=_project_tags(flow_cls, state, False),
            # the run resumed (not the first of a chain of resumes), as Metaflow's current.origin_run_id
            origin_run_id=int(origin["run_id"]),
            resumed_from=int(origin["run_id"]),
            reuse=reuse_factory(flow_cls, graph, plan, use_cache, _say),
            executor=executor,
        )

    parameter_options(group, flow_cls)

    @group.command(help="Show the steps of the flow, their docstrings and where each goes next.")
    @show_format_option
    @click.pass_obj
    def show(state: FlowState, fmt: str) -> None:
        click.echo(show_graph(state.graph, fmt), nl=False)

    from cafstore.cli.flow_client_commands import add_client_commands

    add_client_commands(group, flow_cls.__name__)
    return group


def _project_tags(flow_cls: type, state: FlowState, production: bool) -> List[str]:
    """The system tags of a ``@project`` flow's run (none for other flows); ``run --production`` also
    selects the production branch."""
    from cafstore.runner.authoring.current import bind_launch_project
    from cafstore.runner.authoring.project import project_fields
    from cafstore.schema import current_user

    branch, top_production = state.project_options
    found = resolve_project(flow_cls, branch, top_production or production, current_user())
    tags = found.tags if found is not None else []
    bind_launch_project(project_fields(flow_cls.__name__, tags))  # parameter default functions may read them
    return tags


def _say(text: str) -> None:
    from cafstore.runner.execution.logs import local_stamp

    click.echo(f"{local_stamp()} {text}")


def run_cli(flow_cls: type, args: List[str], prog_name: str) -> int:
    """Run the flow's command line on ``args``; the exit status."""
    try:
        group = build_cli(flow_cls)
        value = group.main(args=args, prog_name=prog_name, standalone_mode=False)
        return value if isinstance(value, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        path = exc.ctx.command_path if exc.ctx is not None else prog_name
        text = exc.format_message().strip()
        text += "" if text.endswith((".", "?", "!")) else "."
        _fail(f"bad command line: {text} See `{path} --help` for the options.", 2)
    except click.Abort:
        _fail("interrupted.", 130)
    except CafstoreError as exc:
        _fail(f"{exc.headline}: {exc}", exc.exit_code)
    return 1


def _fail(message: str, code: int) -> NoReturn:
    sys.stdout.flush()
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


def main(flow_cls: type) -> NoReturn:
    """Entry point used by ``FlowSpec.__init__`` under ``if __name__ == '__main__':``."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else flow_cls.__name__
    code = run_cli(flow_cls, sys.argv[1:], prog)
    sys.stdout.flush()
    sys.exit(code)
