"""What a flow's own ``dump``, ``logs`` and ``tag`` print, in Metaflow's local-mode formats.

Scripts and tests written for Metaflow read these outputs: ``dump --file``
writes a pickle of ``{"<run>/<step>/<task>": {name: value}}``, ``logs``
prints the log text alone on stdout (its headers go to stderr, and
``--quiet`` drops them), ``tag list --flat`` prints one tag a line on
stderr after the banner. So the flow's command line keeps those formats
exactly, while the global ``cafstore`` command keeps its own
(cafstore.cli.client_actions). Messages Metaflow highlights with ``*...*``
are printed without the stars.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

import click

TOO_LARGE = "< artifact too large >"  # what Metaflow shows for a value over --max-value-size
_MARK = "\x00"  # stands for Metaflow's highlight star while a line is laid out


def plain(text: str, raw: bool = False) -> str:
    """A message without Metaflow's ``*highlight*`` markers (``raw``: text holding user values, such
    as tags, whose own stars stay; only the markers this module put in go)."""
    return text.replace(_MARK, "") if raw else text.replace("*", "").replace(_MARK, "")


class Echo:
    """Metaflow's two echoes: ``say`` (silenced by ``--quiet``) and ``always``; both default to stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def say(self, text: str, err: bool = True, raw: bool = False, **style: Any) -> None:
        if not self.quiet:
            click.secho(plain(text, raw), err=err, **style)

    def always(self, text: str, err: bool = True, raw: bool = False, **style: Any) -> None:
        click.secho(plain(text, raw), err=err, **style)


# -- dump -------------------------------------------------------------------------------------
def _shown(task: Any, private: bool, include: Set[str]) -> List[str]:
    names = sorted(task.artifact_ids)
    return [n for n in names if (not include or n in include) and (private or not n.startswith("_"))]


def dump(
    echo: Echo, tasks: Iterable[Any], private: bool, max_value_size: int, include: str, file: Optional[str]
) -> None:
    """``dump``: per task a header, then ``name [size: N type: T] = value`` lines, or all values
    into a pickle ``file`` (values whole: ``--max-value-size`` only limits what is printed)."""
    wanted = {name for name in include.split(",") if name}
    output: Dict[str, Dict[str, Any]] = {}
    for task in tasks:
        flow, run_id, step, task_id = task.path_components
        echo.say(f"Dumping output of run_id=*{run_id}* step=*{step}* task_id=*{task_id}*", fg="magenta")
        names = _shown(task, private, wanted)
        if file is not None:
            output[f"{run_id}/{step}/{task_id}"] = {name: task.artifact_value(name) for name in names}
            continue
        lines = []
        for name in names:
            artifact = task[name]
            size = artifact.size
            value = task.artifact_value(name)
            shown = TOO_LARGE if size == 0 or size > max_value_size else value
            lines.append(f"{name} [size: {size} type: {type(value)}] = {shown}")
        click.echo("\n".join(lines))
    if file is not None:
        with open(file, "wb") as out:
            pickle.dump(output, out, protocol=pickle.HIGHEST_PROTOCOL)
        echo.say(f"Artifacts written to *{file}*")


# -- logs -------------------------------------------------------------------------------------
def logs(echo: Echo, tasks: Iterable[Any], streams: List[str], timestamps: bool) -> None:
    """``logs``: per task a header and each stream's name on stderr, the lines themselves on stdout."""
    for task in tasks:
        flow, run_id, step, task_id = task.path_components
        echo.say(f"Dumping logs of run_id=*{run_id}* step=*{step}* task_id=*{task_id}*", fg="magenta")
        for stream in streams:
            echo.say(stream, bold=True)
            for when, line in task.loglines(stream):
                if timestamps and when is not None:
                    local = when.astimezone()
                    click.secho(local.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " ", fg="white", nl=False)
                click.echo(line)


def chosen_streams(stdout: bool, stderr: bool, both: bool) -> List[str]:
    """Metaflow's choice: ``--stdout`` and/or ``--stderr``, else both; stdout first."""
    chosen = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
    if not chosen and both:
        chosen = {"stdout", "stderr"}
    return sorted(chosen, reverse=True)


# -- tags -------------------------------------------------------------------------------------
def _columns(cells: List[str], max_length: int, width_of: Callable[[str], int]) -> List[str]:
    """Metaflow's tag table: as many columns of ``max_length`` as fit in 124 characters."""
    column_count = 124 // (max_length + 4)
    if column_count == 0:
        column_count, per_column = 1, len(cells)
    else:
        per_column = (len(cells) + column_count - 1) // column_count
    cells = cells + [" "] * (per_column * column_count - len(cells))
    rows = []
    for i in range(per_column):
        values = [cells[i + j * per_column] for j in range(column_count)]
        rows.append("    ".join(v.ljust(width_of(v)) for v in values))
    return rows


def print_run_groups(echo: Echo, system_by: Dict[str, Any], all_by: Dict[str, Any], by_tag: bool) -> None:
    """The listing of ``tag list`` (and after ``tag add|remove|replace``), grouped by run or by tag."""
    echo.say("\n".join(["", "System tags and *tags*; only *tags* can be modified", "-" * 56, ""]), err=False)
    for group in sorted(set(all_by) | set(system_by)):
        everything, system = all_by.get(group, set()), system_by.get(group, set())
        if by_tag:
            if everything:
                _print_by_tag(echo, group, everything, is_system=False)
            if system:
                _print_by_tag(echo, group, system, is_system=True)
        else:
            _print_by_run(echo, group, set(system), set(everything), skip_header=len(all_by) == 1)


def _print_by_run(echo: Echo, group: str, system: Set[str], everything: Set[str], skip_header: bool) -> None:
    if echo.quiet:  # parseable: runs ; system tags ; user tags
        user = everything - system
        echo.always(" ; ".join([group, ",".join(sorted(system)), ",".join(sorted(user))]), raw=True)
        return
    max_length = max((len(t) for t in everything), default=0)
    cells = [t if t in system else f"{_MARK}{t}{_MARK}" for t in sorted(everything)]
    lines = [] if skip_header else [f"For run {group}"]
    lines += _columns(cells, max_length, lambda v: max_length + 2 if v.startswith(_MARK) else max_length)
    lines.append("")
    echo.say("\n".join(lines), err=False, raw=True)


def _print_by_tag(echo: Echo, group: str, runs: Iterable[str], is_system: bool) -> None:
    runs = sorted(runs)
    if echo.quiet:
        echo.always(" ; ".join([f"system:{group}" if is_system else f"user:{group}", ",".join(runs)]), raw=True)
        return
    max_length = max((len(r) for r in runs), default=0)
    lines = [f"For tag {group}" if is_system else f"For tag {_MARK}{group}{_MARK}"]
    lines += _columns(runs, max_length, lambda v: max_length)
    lines.append("")
    echo.say("\n".join(lines), err=False, raw=True)


def print_one_run(echo: Echo, run: Any) -> None:
    print_run_groups(echo, {run.pathspec: run.system_tags}, {run.pathspec: run.tags}, by_tag=False)


def list_tags(
    echo: Echo, runs: List[Any], hide_system_tags: bool, group_by_tag: bool, group_by_run: bool, flat: bool
) -> None:
    """``tag list``: the tags of ``runs``, merged (default), by run, by tag, or flat (one a line)."""
    system_by: Dict[str, Any] = {}
    all_by: Dict[str, Any] = {}
    for run in runs:
        user = run.tags - run.system_tags
        if group_by_run:
            all_by[run.pathspec] = user if hide_system_tags else run.tags
            if not hide_system_tags:
                system_by[run.pathspec] = run.system_tags
        elif group_by_tag:
            for t in user:
                all_by.setdefault(t, []).append(run.pathspec)
            if not hide_system_tags:
                for t in run.system_tags:
                    system_by.setdefault(t, []).append(run.pathspec)
        else:
            all_by.setdefault("_", set()).update(user if hide_system_tags else run.tags)
            if not hide_system_tags:
                system_by.setdefault("_", set()).update(run.system_tags)
    if not group_by_run and not group_by_tag:
        key = ",".join(run.pathspec for run in runs)
        system_by = {key: system_by.get("_", set())}
        all_by = {key: all_by.get("_", set())}
    if flat:
        for tags in all_by.values():
            for tag in sorted(tags):
                echo.say(tag, raw=True)
        return
    print_run_groups(echo, system_by, all_by, group_by_tag)
