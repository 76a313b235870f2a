"""The client's commands on a flow's own command line (``python flow.py logs|dump|tag``).

They take Metaflow's options and print Metaflow's local-mode formats
(cafstore.cli.flow_client_formats), so scripts written against ``python
flow.py dump|logs|tag`` of Metaflow keep working. Pathspecs are relative to
the flow: ``5/start`` or ``5/start/3`` (``HelloFlow/5/start`` and a bare
run ``5`` work too); ``tag`` names its run with ``--run-id N``. Errors are
printed by cafstore.cli.context.friendly_errors, as one paragraph.
"""

from __future__ import annotations

from typing import Any, List, Optional

import click

from cafstore.cli import checks
from cafstore.cli import flow_client_formats as fmt
from cafstore.cli.context import friendly_errors
from cafstore.exception import ClientError, NamespaceMismatch, NotFound


def _store() -> Any:
    """The store the flow's command line selected (its context object's), else the discovered one."""
    ctx = click.get_current_context()
    while ctx is not None:
        existing = getattr(ctx.obj, "existing_store", None)
        if callable(existing):  # the flow's FlowState: never creates a store just to read it
            return existing()
        store = getattr(ctx.obj, "store", None)
        if store is not None and hasattr(store, "get_ref"):
            return store
        ctx = ctx.parent
    from cafstore.client.connection import get_store

    return get_store()


def _echo() -> fmt.Echo:
    """Metaflow's echo for this invocation: ``--quiet`` on the flow's command line silences it."""
    ctx: Optional[click.Context] = click.get_current_context()
    while ctx is not None:
        if hasattr(ctx.obj, "quiet"):
            return fmt.Echo(bool(ctx.obj.quiet))
        ctx = ctx.parent
    return fmt.Echo(False)


def _banner(flow_name: str) -> None:
    """Metaflow's first stderr line, which scripts reading these commands' stderr skip. Printed once the
    command line parsed (so a usage error stays one paragraph), and not with ``--quiet``."""
    from cafstore import __version__
    from cafstore.schema import current_user

    _echo().say(f"cafstore {__version__} executing {flow_name} for user:{current_user()}", fg="magenta")


def add_client_commands(group: click.Group, flow_name: str) -> None:
    """Attach logs, dump and tag for ``flow_name`` to the flow's click group."""

    def tasks_at(input_path: str, attempt: Optional[int] = None, artifact_ok: bool = False) -> List[Any]:
        """The tasks ``RUN/STEP`` (all, by id) or ``RUN/STEP/TASK`` names, in any namespace."""
        from cafstore.client import Run, Task
        from cafstore.client.pathspecs import split

        parts = [p for p in input_path.strip().split("/") if p]
        if len(parts) > 1 and parts[0] == flow_name:
            parts = parts[1:]
        if len(parts) == 4 and artifact_ok:  # RUN/STEP/TASK/NAME: that task, that artifact (cafstore's extension)
            parts = parts[:3]
        if not 1 <= len(parts) <= 3:
            raise ClientError(
                f"Cannot read {input_path!r}: give RUN_ID/STEP_NAME or RUN_ID/STEP_NAME/TASK_ID (e.g. 5/start)."
            )
        store = _store()
        if len(parts) == 3:
            pathspec = "/".join([flow_name, *parts])
            split(pathspec, "task")
            return [Task(pathspec, attempt=attempt, store=store, _namespace_check=False)]
        run = Run("/".join([flow_name, parts[0]]), store=store, _namespace_check=False)
        steps = [run[parts[1]]] if len(parts) == 2 else list(reversed(list(run)))
        tasks = [task for step in steps for task in reversed(list(step))]
        if attempt is not None:
            tasks = [Task(t.pathspec, attempt=attempt, store=store, _namespace_check=False) for t in tasks]
        return tasks

    @group.command(help="Show stdout/stderr of a task or all tasks in a step: RUN_ID/STEP_NAME[/TASK_ID].")
    @click.argument("input_path", metavar="INPUT_PATH")
    @click.option("--stdout/--no-stdout", default=False, help="Show stdout of the task.")
    @click.option("--stderr/--no-stderr", default=False, help="Show stderr of the task.")
    @click.option("--both/--no-both", default=True, show_default=True, help="Show both stdout and stderr.")
    @click.option("--timestamps/--no-timestamps", default=False, help="Prefix each line with its local time.")
    @click.option("--attempt", type=click.IntRange(min=0), default=None, help="This attempt (default: the last).")
    @friendly_errors
    def logs(input_path: str, stdout: bool, stderr: bool, both: bool, timestamps: bool, attempt: Optional[int]) -> None:
        _banner(flow_name)
        fmt.logs(_echo(), tasks_at(input_path, attempt), fmt.chosen_streams(stdout, stderr, both), timestamps)

    @group.command(help="Get the artifacts of a task or all tasks in a step: RUN_ID/STEP_NAME[/TASK_ID].")
    @click.argument("input_path", metavar="INPUT_PATH")
    @click.option("--private/--no-private", default=False, show_default=True, help="Show also private artifacts.")
    @click.option(
        "--max-value-size",
        default=1000,
        show_default=True,
        type=int,
        help="Show only values smaller than this (in bytes, pickled); 0 shows only names.",
    )
    @click.option("--include", default="", help="Only the artifacts in this comma-separated list.")
    @click.option("--file", default=None, help="Write {task pathspec: {name: value}} to this file as a pickle.")
    @friendly_errors
    def dump(input_path: str, private: bool, max_value_size: int, include: str, file: Optional[str]) -> None:
        _banner(flow_name)
        parts = [p for p in input_path.strip().split("/") if p]
        if len(parts) == 4 + (parts[0] == flow_name):
            include, private = parts[-1], True  # one artifact, named outright
            (task,) = tasks_at(input_path, artifact_ok=True)
            task[parts[-1]]  # NotFound naming the task's artifacts when it has no such one
            fmt.dump(_echo(), [task], private, max_value_size, include, file)
            return
        fmt.dump(_echo(), tasks_at(input_path), private, max_value_size, include, file)

    @group.group(help="Commands related to tagging.")
    def tag() -> None:
        pass

    def run_for_tags(run_id: Optional[str], user_namespace: Optional[str]) -> Any:
        """The run ``--run-id`` names, which must be in ``user_namespace`` (None: any), or a clear error."""
        from cafstore.client import Flow, Run, namespace

        namespace(user_namespace)
        store = _store()
        try:
            flow = Flow(flow_name, store=store, _namespace_check=False)
        except NotFound:
            raise ClientError(f"No run found for {flow_name}. Please run the flow before tagging.") from None
        if run_id is None:
            latest = flow.latest_run
            hint = f" {flow_name}'s latest run in namespace {user_namespace} has id {latest.id}." if latest else ""
            raise ClientError(f"Please specify a run-id using --run-id.{hint}")
        if "/" in run_id:
            raise ClientError(f"Run-id {run_id} is not a valid run-id.")
        try:
            return Run(f"{flow_name}/{run_id}", store=store)
        except NamespaceMismatch:
            raise ClientError(
                f"Run {flow_name}/{run_id} for flow {flow_name} does not belong to namespace {user_namespace}. "
                "Give --namespace to look elsewhere."
            ) from None
        except NotFound:
            raise NotFound(f"No run {flow_name}/{run_id} found for flow {flow_name}.") from None

    def refuse_bad_tags(run: Any, tags: Any) -> None:
        """A tag to add that no user tag may be is a usage error (exit 2) naming the rule -- except one the
        run has as a system tag, which Metaflow accepts and leaves as it is."""
        from cafstore import schema

        for tag in tags:
            problem = None if tag in run.system_tags else schema.user_tag_problem(tag)
            if problem is not None:
                raise click.BadParameter(f"Cannot use tag {tag!r}: {problem}.", param_hint="tag")

    def default_ns(given: Optional[str]) -> Optional[str]:
        from cafstore.client.namespaces import user_namespace

        return user_namespace() if given is None else given

    run_id_option = click.option(
        "--run-id", default=None, callback=checks.run_id, help="Run ID of the run to tag. [required]"
    )
    ns_option = click.option(
        "--namespace", "user_namespace", default=None, help="Look for the run in this namespace (default: yours)."
    )

    @tag.command("add", help="Add tags to a run.")
    @run_id_option
    @ns_option
    @click.argument("tags", nargs=-1, required=True)
    @friendly_errors
    def tag_add(run_id: Optional[str], user_namespace: Optional[str], tags: tuple) -> None:
        _banner(flow_name)
        run = run_for_tags(run_id, default_ns(user_namespace))
        refuse_bad_tags(run, tags)
        run.add_tags(tags)
        echo = _echo()
        echo.say("Operation successful. New tags:", err=False)
        fmt.print_one_run(echo, run)

    @tag.command("remove", help="Remove tags from a run.")
    @run_id_option
    @ns_option
    @click.argument("tags", nargs=-1, required=True)
    @friendly_errors
    def tag_remove(run_id: Optional[str], user_namespace: Optional[str], tags: tuple) -> None:
        _banner(flow_name)
        run = run_for_tags(run_id, default_ns(user_namespace))
        run.remove_tags(tags)
        echo = _echo()
        echo.say("Operation successful. New tags:")
        fmt.print_one_run(echo, run)

    @tag.command("replace", help="Replace tags of a run atomically: removals first, then additions.")
    @run_id_option
    @ns_option
    @click.option("--add", "tags_to_add", multiple=True, help="A tag to add (repeatable; at least one).")
    @click.option("--remove", "tags_to_remove", multiple=True, help="A tag to remove (repeatable; at least one).")
    @friendly_errors
    def tag_replace(
        run_id: Optional[str], user_namespace: Optional[str], tags_to_add: tuple, tags_to_remove: tuple
    ) -> None:
        _banner(flow_name)
        if not tags_to_add and not tags_to_remove:
            raise ClientError("Specify at least one tag to add (--add) and one tag to remove (--remove).")
        if not tags_to_remove:
            raise ClientError("Specify at least one tag to remove; else please use `tag add`.")
        if not tags_to_add:
            raise ClientError("Specify at least one tag to add, else please use `tag remove`.")
        run = run_for_tags(run_id, default_ns(user_namespace))
        refuse_bad_tags(run, tags_to_add)
        run.replace_tags(tags_to_remove, tags_to_add)
        echo = _echo()
        echo.say("Operation successful. New tags:")
        fmt.print_one_run(echo, run)

    @tag.command("list", help="List tags of a run, or of every run of this flow.")
    @click.option("--run-id", default=None, callback=checks.run_id, help="Run ID of the run to list.")
    @click.option("--all", "list_all", is_flag=True, help="List tags across all runs of this flow.")
    @click.option("--my-runs", is_flag=True, help="List tags across your runs of this flow.")
    @click.option("--hide-system-tags", is_flag=True, help="Hide system tags.")
    @click.option("--group-by-tag", is_flag=True, help="Show runs grouped by tag.")
    @click.option("--group-by-run", is_flag=True, help="Show tags grouped by run.")
    @click.option("--flat", is_flag=True, hidden=True, help="One tag a line, no grouping.")
    @click.argument("arg_run_id", required=False, default=None)
    @friendly_errors
    def tag_list(
        run_id: Optional[str],
        list_all: bool,
        my_runs: bool,
        hide_system_tags: bool,
        group_by_tag: bool,
        group_by_run: bool,
        flat: bool,
        arg_run_id: Optional[str],
    ) -> None:
        _banner(flow_name)
        if run_id is None and arg_run_id is None and not list_all and not my_runs:
            list_all = True
        if list_all and my_runs:
            raise ClientError("Option --all cannot be used together with --my-runs.")
        if run_id is not None and arg_run_id is not None:
            raise ClientError("Specify a run either using --run-id or as an argument but not both.")
        if group_by_run and group_by_tag:
            raise ClientError("Option --group-by-tag cannot be used with --group-by-run.")
        if flat and (group_by_run or group_by_tag):
            raise ClientError("Option --flat cannot be used with any --group-by-* option.")
        run_id = arg_run_id if arg_run_id is not None else run_id
        if list_all or my_runs:
            from cafstore.client import Flow, namespace

            namespace(default_ns(None) if my_runs else None)
            try:
                runs = list(Flow(flow_name, store=_store()).runs())
            except NotFound:
                raise ClientError(f"Cannot list tags because the flow {flow_name} has never been run.") from None
        else:
            runs = [run_for_tags(run_id, None)]
        fmt.list_tags(_echo(), runs, hide_system_tags, group_by_tag, group_by_run, flat)
