"""A flow's graph as Mermaid or Graphviz DOT text, from the graph's JSON form.

Both ``python flow.py show`` (a graph parsed from the flow file) and
``cafstore show`` / the web UI (the graph a run recorded, docs/datamodel.md)
hold the graph as the list of step dicts ``FlowGraph.to_dict()`` makes, so
the renderings work on that list and never need the runner.

Step names are Python identifiers, but a recorded graph is data a store's
writer chose, and a foreach variable or switch case can hold any text: every
label is escaped for the language it is written in, so a name can neither
break the diagram's syntax nor smuggle markup into a page that embeds it.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

FORMATS = ("text", "mermaid", "dot")

_SAFE_ID = re.compile(r"[^A-Za-z0-9_]")


def node_id(name: str) -> str:
    """An identifier both languages accept for step ``name`` (prefixed, so ``end`` and ``graph``, keywords
    in Mermaid or DOT, stay plain names)."""
    return "s_" + _SAFE_ID.sub(lambda m: f"_{ord(m.group()):x}_", name)


def edges(steps: Sequence[Mapping[str, Any]]) -> List[tuple]:
    """(source, target, label) for every ``self.next`` link: a foreach's edge says what it fans out
    over, a switch's edges say which case leads where."""
    out = []
    names = {step["name"] for step in steps}
    for step in steps:
        cases: Dict[str, List[str]] = {}
        for key, target in (step.get("switch_cases") or {}).items():
            cases.setdefault(target, []).append(str(key))
        for target in dict.fromkeys(step.get("next") or ()):
            if target not in names:
                continue
            label = ""
            if step.get("foreach") is not None:
                label = f"foreach {step['foreach']}"
            elif target in cases:
                label = ", ".join(cases[target])
            out.append((step["name"], target, label))
    return out


def _mermaid_text(text: str) -> str:
    # Mermaid's entity codes inside a quoted label; '<' and '>' too, since Mermaid renders labels as HTML.
    for char, code in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text.replace("\n", " ").replace("|", "#124;")


def mermaid(steps: Sequence[Mapping[str, Any]], notes: Optional[Mapping[str, str]] = None) -> str:
    """Mermaid flowchart source, top to bottom. ``notes`` adds a second line to a step's box (a status,
    a task count)."""
    notes = notes or {}
    lines = ["flowchart TD"]
    for step in steps:
        label = step["name"] + (f" ({notes[step['name']]})" if step["name"] in notes else "")
        shape = ('{{"', '"}}') if step.get("type") == "split-switch" else ('["', '"]')
        lines.append(f"    {node_id(step['name'])}{shape[0]}{_mermaid_text(label)}{shape[1]}")
    for source, target, label in edges(steps):
        arrow = f' -->|"{_mermaid_text(label)}"| ' if label else " --> "
        lines.append(f"    {node_id(source)}{arrow}{node_id(target)}")
    return "\n".join(lines) + "\n"


def dot_string(text: str) -> str:
    """``text`` as a DOT quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(steps: Sequence[Mapping[str, Any]], name: str = "flow", notes: Optional[Mapping[str, str]] = None) -> str:
    """Graphviz DOT source (``dot -Tsvg`` draws it)."""
    notes = notes or {}
    lines = [
        f"digraph {dot_string(name)} {{",
        "    rankdir=TB;",
        '    node [shape=box, style=rounded, fontname="sans"];',
    ]
    for step in steps:
        label = step["name"] + (f"\n{notes[step['name']]}" if step["name"] in notes else "")
        shape = ", shape=diamond" if step.get("type") == "split-switch" else ""
        lines.append(f"    {node_id(step['name'])} [label={dot_string(label)}{shape}];")
    for source, target, label in edges(steps):
        extra = f" [label={dot_string(label)}]" if label else ""
        lines.append(f"    {node_id(source)} -> {node_id(target)}{extra};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def text(steps: Sequence[Mapping[str, Any]], name: str, doc: str = "") -> str:
    """The plain listing ``show`` prints, for a recorded graph (a flow file's graph has its own,
    ``FlowGraph.describe``, with the same layout)."""
    lines = [name] + ["    " + line for line in doc.splitlines()]
    for step in steps:
        lines += ["", f"Step {step['name']}"]
        lines += ["    " + line if line else "" for line in (step.get("doc") or "").splitlines()]
        if step.get("type") == "end":
            continue
        following = list(step.get("next") or ())
        if not following:
            lines.append("    => (no next step)")
        elif step.get("foreach") is not None:
            lines.append(f"    => {following[0]} (foreach over '{step['foreach']}')")
        elif step.get("type") == "split-switch":
            cases = ", ".join(f"{key!r}: {target}" for key, target in (step.get("switch_cases") or {}).items())
            lines.append(f"    => {', '.join(following)} (switch on '{step.get('condition')}': {cases})")
        else:
            lines.append("    => " + ", ".join(following))
    return "\n".join(lines) + "\n"


def render(fmt: str, steps: Sequence[Mapping[str, Any]], name: str, doc: str = "") -> str:
    """The graph in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "mermaid":
        return mermaid(steps)
    if fmt == "dot":
        return dot(steps, name)
    return text(steps, name, doc)
