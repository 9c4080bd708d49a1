"""A campaign's journey as a picture and as an order of tasks.

    text = mermaid(campaign)          # a Mermaid `flowchart TD` (docs, DAG docs, CLI)
    order = journey_order(campaign)   # [(step id, [predecessor step ids]), ...]

`mermaid` draws the trigger, one node per step and the step graph's edges
(`Campaign.successors`): `next` edges unlabelled, a branch's edges labelled `then` / `else`;
a step that ends the journey without being an `exit` step points to an `end` node. The goal
and the exit rules are written in a note (an unconnected node): they can end a journey at any
step. Node shapes by kind: trigger a stadium, send a rectangle, wait a hexagon, branch a
rhombus, update a parallelogram, notify_owner a subroutine box, crm_task a trapezoid, exit a
circle. Node ids are `step_<step id>` (step ids are slugs, and the prefix keeps Mermaid's
keywords such as `end` out of the ids); every label is quoted with its special characters
written as Mermaid entity codes, so no text from the configuration can break the diagram.

`journey_order` lists every step once, each after all of its predecessors, with those
predecessors: the step graph without its back edges. Loops are allowed only through a wait
(config/campaigns.py), so the edge that closes a loop is dropped — the journeys taking it
move on in a later run anyway. Back edges are those a depth-first walk from the first step
(successors in `then`, `else` / `next` order) meets going to a step still on its path; among
the steps whose predecessors are all placed, the one first in the file comes first, so a
journey without branches keeps its file order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from leadflow.config.campaigns import (
    BranchStep,
    Campaign,
    CrmTaskStep,
    DateRelativeTrigger,
    EventSpec,
    EventTrigger,
    ExitStep,
    InactivityTrigger,
    JourneyCondition,
    NotifyOwnerStep,
    OneOffTrigger,
    SegmentEntryTrigger,
    SendStep,
    StepNode,
    UpdateStep,
    WaitStep,
)
from leadflow.config.filters import AllOf, AnyOf, FieldCondition, FilterNode, Not, filter_to_yaml

INDENT = "    "
TRIGGER_NODE = "trigger"
END_NODE = "journey_end"
NOTE_NODE = "rules"
# Longest filter text in a label; the rest is cut off with an ellipsis.
FILTER_TEXT_LIMIT = 80
# (opening, closing) of each kind's node shape.
SHAPES: dict[str, tuple[str, str]] = {
    "trigger": ("([", "])"),
    "send": ("[", "]"),
    "wait": ("{{", "}}"),
    "branch": ("{", "}"),
    "update": ("[/", "/]"),
    "notify_owner": ("[[", "]]"),
    "crm_task": ("[/", "\\]"),
    "exit": ("((", "))"),
    "end": ("((", "))"),
    "note": (">", "]"),
}
# Characters with a meaning in Mermaid labels, written as entity codes (`#quot;`, `#91;`).
ESCAPES = {
    "#": "#35;",
    '"': "#quot;",
    "&": "#amp;",
    "<": "#lt;",
    ">": "#gt;",
    "[": "#91;",
    "]": "#93;",
    "(": "#40;",
    ")": "#41;",
    "{": "#123;",
    "}": "#125;",
    "|": "#124;",
    "`": "#96;",
}
# str.translate's table: every DAG's docs are drawn at parse time, character by character.
_ESCAPE_TABLE = str.maketrans(ESCAPES)


# --- the Mermaid flowchart ---------------------------------------------------------------


def mermaid(campaign: Campaign) -> str:
    """The journey of `campaign` as a Mermaid flowchart (text ending with a newline)."""
    nodes = [_node(TRIGGER_NODE, "trigger", [_trigger_text(campaign)])]
    edges = [f"{TRIGGER_NODE} --> {node_id(campaign.steps[0].id)}"]
    journey_ends = False
    for index, step in enumerate(campaign.steps):
        kind, lines = _step_text(step)
        nodes.append(_node(node_id(step.id), kind, [step.id, *lines]))
        successors = campaign.successors(index)
        for label, target in successors:
            arrow = "-->" if label == "next" else f"-->|{label}|"
            edges.append(f"{node_id(step.id)} {arrow} {node_id(target)}")
        if not successors and not isinstance(step, ExitStep):
            edges.append(f"{node_id(step.id)} --> {END_NODE}")
            journey_ends = True
    if journey_ends:
        nodes.append(_node(END_NODE, "end", ["end"]))
    notes = _rule_lines(campaign)
    if notes:
        nodes.append(_node(NOTE_NODE, "note", notes))
    lines = ["flowchart TD", *(INDENT + line for line in nodes + edges)]
    if notes:
        lines += [
            f"{INDENT}classDef note fill:#fff8c4,stroke:#c9b458,color:#333",
            f"{INDENT}class {NOTE_NODE} note",
        ]
    return "\n".join(lines) + "\n"


def node_id(step_id: str) -> str:
    """The Mermaid node id of a step."""
    return f"step_{step_id}"


def escape(text: str) -> str:
    """`text` safe inside a quoted Mermaid label (line breaks become spaces)."""
    return " ".join(text.split()).translate(_ESCAPE_TABLE)


def _node(identifier: str, kind: str, lines: list[str]) -> str:
    opening, closing = SHAPES[kind]
    label = "<br/>".join(escape(line) for line in lines)
    return f'{identifier}{opening}"{label}"{closing}'


def _trigger_text(campaign: Campaign) -> str:
    trigger = campaign.trigger
    if isinstance(trigger, EventTrigger):
        return f"on {_event_text(trigger.event)}"
    if isinstance(trigger, SegmentEntryTrigger):
        return f"on entering segment {trigger.segment_entry.segment}"
    if isinstance(trigger, DateRelativeTrigger):
        spec = trigger.date_relative
        narrowed = spec.product or spec.product_family
        where = f" of {narrowed}" if narrowed else ""
        return f"on {spec.field}{where} {spec.offset_days:+d} days"
    if isinstance(trigger, InactivityTrigger):
        return f"on {trigger.inactivity.days} days without activity"
    if isinstance(trigger, OneOffTrigger):
        return f"once at {trigger.one_off.at}"
    raise AssertionError(f"unknown trigger {trigger!r}")


def _event_text(event: EventSpec) -> str:
    qualifiers = event.model_dump(exclude_none=True, exclude={"type"})
    return " ".join([event.type, *(f"{key} {value}" for key, value in qualifiers.items())])


def _step_text(step: StepNode) -> tuple[str, list[str]]:
    """(kind, label lines below the step id)."""
    describe: dict[type, Callable[[Any], tuple[str, list[str]]]] = {
        SendStep: _send_text,
        WaitStep: _wait_text,
        BranchStep: _branch_text,
        UpdateStep: _update_text,
        NotifyOwnerStep: lambda step: (
            "notify_owner",
            [f"notify owner: {step.notify_owner.message}"],
        ),
        CrmTaskStep: _crm_task_text,
        ExitStep: lambda step: (
            "exit",
            [f"exit: {step.exit.reason}" if step.exit.reason else "exit"],
        ),
    }
    return describe[type(step)](step)


def _send_text(step: SendStep) -> tuple[str, list[str]]:
    lines = [f"send {step.send.message}"]
    if step.send.content:
        lines.append(f"content: {', '.join(step.send.content)}")
    return "send", lines


def _wait_text(step: WaitStep) -> tuple[str, list[str]]:
    until = step.wait.until
    if until is None:
        return "wait", [f"wait {step.wait.duration}"]
    hours = until.start.strftime("%H:%M")
    if until.end is not None:
        hours += f"–{until.end.strftime('%H:%M')}"
    return "wait", [f"wait until {', '.join(until.days)} {hours}"]


def _branch_text(step: BranchStep) -> tuple[str, list[str]]:
    branch = step.branch
    if branch.filter is not None:
        return "branch", [f"{filter_text(branch.filter)}?"]
    narrowing = {
        key: getattr(branch, key)
        for key in ("link", "link_tag", "asset", "product", "product_family")
        if getattr(branch, key) is not None
    }
    condition = " ".join([branch.on, *(f"{key} {value}" for key, value in narrowing.items())])
    return "branch", [f"{condition} since {branch.since_step}?"]


def _update_text(step: UpdateStep) -> tuple[str, list[str]]:
    changes = step.update.set
    lines = []
    if changes.tag:
        lines.append(f"add tag {changes.tag}")
    if changes.remove_tag:
        lines.append(f"remove tag {changes.remove_tag}")
    if changes.stage:
        lines.append(f"stage {changes.stage}")
    lines += [f"{name} = {_compact(value)}" for name, value in changes.fields.items()]
    return "update", lines


def _crm_task_text(step: CrmTaskStep) -> tuple[str, list[str]]:
    task = step.crm_task
    days = "1 day" if task.due_in_days == 1 else f"{task.due_in_days} days"
    return "crm_task", [f"CRM {task.type}: {task.subject}", f"due in {days}"]


def _rule_lines(campaign: Campaign) -> list[str]:
    lines = []
    if campaign.goal is not None:
        lines.append(f"goal: {_condition_text(campaign.goal)}")
    for number, rule in enumerate(campaign.exit_rules, start=1):
        lines.append(f"exit {rule.id or number}: {_condition_text(rule)}")
    return lines


def _condition_text(condition: JourneyCondition) -> str:
    if condition.event is not None:
        return f"event {_event_text(condition.event)}"
    return filter_text(condition.filter)


def filter_text(node: FilterNode) -> str:
    """A one-line reading of a filter (`all(country = DE, inactive: {days: 90})`), cut at
    FILTER_TEXT_LIMIT characters."""
    text = _filter_words(node)
    if len(text) > FILTER_TEXT_LIMIT:
        return text[: FILTER_TEXT_LIMIT - 1] + "…"
    return text


def _filter_words(node: FilterNode) -> str:
    if isinstance(node, FieldCondition):
        data = filter_to_yaml(node)
        value = [_compact(data["value"])] if "value" in data else []
        return " ".join([node.field, node.op, *value])
    if isinstance(node, AllOf | AnyOf):
        kind = "all" if isinstance(node, AllOf) else "any"
        return f"{kind}({', '.join(_filter_words(child) for child in node.conditions)})"
    if isinstance(node, Not):
        return f"not({_filter_words(node.condition)})"
    # Any other condition is one kind key with its spec ({inactive: {days: 90}}).
    ((kind, spec),) = filter_to_yaml(node).items()
    return f"{kind}: {_compact(spec)}"


def _compact(value: Any) -> str:
    """YAML-flow-like text of a value: {a: 1, b: [x, y]}."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_compact(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_compact(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- the task order ----------------------------------------------------------------------


def journey_order(campaign: Campaign) -> list[tuple[str, list[str]]]:
    """Every step once, after its predecessors: (step id, predecessor step ids in file order),
    the edges that close a loop left out (see the module docstring)."""
    forward = _forward_edges(campaign)
    predecessors: dict[int, set[int]] = {index: set() for index in forward}
    for source, targets in forward.items():
        for target in targets:
            predecessors[target].add(source)
    waiting = {index: len(sources) for index, sources in predecessors.items()}
    ready = [index for index, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for target in forward[index]:
            waiting[target] -= 1
            if waiting[target] == 0:
                heapq.heappush(ready, target)
    if len(order) != len(campaign.steps):
        raise AssertionError(f"campaign {campaign.id!r}: the step graph without back edges loops")
    return [
        (
            campaign.steps[index].id,
            [campaign.steps[source].id for source in sorted(predecessors[index])],
        )
        for index in order
    ]


def _forward_edges(campaign: Campaign) -> dict[int, list[int]]:
    """Step index → its successors' indexes, without back edges (depth-first from step 0,
    then from any step not reached, in file order)."""
    index_of: dict[str, int] = {}
    for index, step in enumerate(campaign.steps):
        index_of.setdefault(step.id, index)
    successors = {
        index: list(
            dict.fromkeys(index_of[target] for _label, target in campaign.successors(index))
        )
        for index in range(len(campaign.steps))
    }
    forward: dict[int, list[int]] = {index: [] for index in successors}
    on_path: set[int] = set()
    done: set[int] = set()
    for root in successors:
        if root in done:
            continue
        # An explicit stack of (step, iterator over its successors): journeys can be long.
        on_path.add(root)
        stack = [(root, iter(successors[root]))]
        while stack:
            index, pending = stack[-1]
            target = next(pending, None)
            if target is None:
                stack.pop()
                on_path.discard(index)
                done.add(index)
            elif target in on_path:
                continue  # a back edge: it closes a loop
            else:
                forward[index].append(target)
                if target not in done:
                    on_path.add(target)
                    stack.append((target, iter(successors[target])))
    return forward


__all__ = ["escape", "filter_text", "journey_order", "mermaid", "node_id"]
