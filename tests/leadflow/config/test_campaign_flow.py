"""Campaign models and the step graph: successors, references, reachability, cycles."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from leadflow.config.campaigns import Campaign, ReEntry, flow_issues, step_kind


def campaign(steps: list[dict[str, Any]], **extra: Any) -> Campaign:
    return Campaign.model_validate(
        {
            "id": "test",
            "name": "Test",
            "tenants": ["hq"],
            "trigger": {"inactivity": {"days": 30}},
            "steps": steps,
            **extra,
        }
    )


SEND_A = {"id": "a", "send": {"message": "a"}}
WAIT = {"id": "pause", "wait": {"duration": "3d"}}


def test_successors_follow_the_list_unless_told_otherwise():
    journey = campaign(
        [
            SEND_A,
            WAIT,
            {"id": "check", "branch": {"on": "opened", "since_step": "a", "then": "done"}},
            {"id": "b", "send": {"message": "b"}, "next": "a_task"},
            {"id": "done", "exit": None},
            {"id": "a_task", "crm_task": {"subject": "Call"}},
        ]
    )

    assert [journey.successors(index) for index in range(6)] == [
        [("next", "pause")],
        [("next", "check")],
        [("then", "done"), ("else", "b")],
        [("next", "a_task")],
        [],
        [],
    ]
    assert [step_kind(step) for step in journey.steps] == [
        "send", "wait", "branch", "send", "exit", "crm_task",
    ]  # fmt: skip
    assert flow_issues(journey) == []
    assert journey.messages() == [(0, "send", "a"), (3, "send", "b")]


def test_references_to_unknown_steps():
    journey = campaign(
        [
            SEND_A,
            {
                "id": "check",
                "branch": {"on": "clicked", "since_step": "x", "then": "b", "else": "c"},
            },
            {"id": "b", "send": {"message": "b"}, "next": "nowhere"},
        ]
    )

    assert flow_issues(journey) == [
        (("steps", 1, "branch", "since_step"), "unknown step 'x'"),
        (("steps", 1, "branch", "else"), "unknown step 'c'"),
        (("steps", 2, "next"), "unknown step 'nowhere'"),
    ]


def test_clicked_and_opened_look_back_to_a_send_step():
    journey = campaign(
        [
            SEND_A,
            WAIT,
            {"id": "check", "branch": {"on": "clicked", "since_step": "pause", "then": "a"}},
        ]
    )

    assert flow_issues(journey) == [
        (
            ("steps", 2, "branch", "since_step"),
            "on: clicked needs since_step to be a send step, not 'pause'",
        )
    ]


def test_branch_and_exit_steps_have_no_next():
    journey = campaign([SEND_A, {"id": "end", "exit": {}, "next": "a"}])

    assert flow_issues(journey) == [(("steps", 1, "next"), "a exit step has no next")]


def test_unreachable_steps_are_each_reported():
    journey = campaign(
        [SEND_A, {"id": "end", "exit": {}}, {"id": "x", "send": {"message": "x"}}, WAIT]
    )

    assert flow_issues(journey) == [
        (("steps", 2), "step 'x' is unreachable from the first step 'a'"),
        (("steps", 3), "step 'pause' is unreachable from the first step 'a'"),
    ]


def test_a_loop_needs_a_wait():
    branch = {"id": "check", "branch": {"on": "opened", "since_step": "a", "then": "end"}}
    spinning = campaign(
        [
            SEND_A,
            branch,
            {"id": "again", "update": {"set": {"tag": "t"}}, "next": "a"},
            {"id": "end", "exit": {}},
        ]
    )
    waiting = campaign(
        [SEND_A, WAIT, branch, {"id": "end", "exit": {}}],
    )
    waiting_loop = campaign(
        [
            SEND_A,
            WAIT,
            branch | {"branch": {**branch["branch"], "else": "a"}},
            {"id": "end", "exit": {}},
        ]
    )

    assert flow_issues(spinning) == [
        (("steps", 0), "steps form a cycle without a wait step: a → check → again → a")
    ]
    assert flow_issues(waiting) == []
    assert flow_issues(waiting_loop) == []


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"id": "w", "wait": {}}, "give one of duration (e.g. 3d) or until"),
        (
            {"id": "b", "branch": {"on": "opened", "then": "a"}},
            "on: opened needs since_step (a step id)",
        ),
        (
            {"id": "b", "branch": {"on": "opened", "since_step": "a", "asset": "x", "then": "a"}},
            "asset applies to on: downloaded only",
        ),
        ({"id": "b", "branch": {"then": "a"}}, "give one of on (with since_step) or filter"),
        ({"id": "u", "update": {"set": {}}}, "set at least one of tag, remove_tag, stage, fields"),
        (
            {"id": "u", "update": {"set": {"fields": {"email": "x@y.z"}}}},
            "'email' cannot be set (settable: salutation, first_name, last_name, language, "
            "country, position, decision_role, owner, source, tags, interests)",
        ),
        (
            {"id": "u", "update": {"set": {"fields": {"decision_role": "boss"}}}},
            "decision_role: expected one of purchaser, production_manager, managing_director, "
            "other, got the text 'boss'",
        ),
        (
            {"id": "s"},
            "a step needs one of the keys send, wait, branch, update, notify_owner, "
            "crm_task, exit; got id",
        ),
    ],
)
def test_step_shape_errors(step, message):
    with pytest.raises(ValidationError) as raised:
        campaign([SEND_A, step])
    assert [error["msg"] for error in raised.value.errors()] == [message]


def test_trigger_and_goal_qualifiers_must_fit_the_event_type():
    with pytest.raises(ValidationError) as raised:
        campaign(
            [SEND_A],
            trigger={"event": {"type": "download", "product_family": "hydrostat"}},
            goal={"event": {"type": "email_click", "asset": "x"}},
        )
    assert [(error["loc"][-2:], error["msg"]) for error in raised.value.errors()] == [
        (("EventTrigger", "event"), "product_family applies to purchase events only"),
        (("goal", "event"), "asset applies to download events only"),
    ]


def test_re_entry_forms():
    assert campaign([SEND_A]).re_entry == ReEntry(policy="never")
    assert campaign([SEND_A], re_entry="always").re_entry.policy == "always"
    lockout = campaign([SEND_A], re_entry={"lockout_days": 30}).re_entry
    assert (lockout.policy, lockout.lockout_days) == ("lockout", 30)
    assert lockout.model_dump() == {"lockout_days": 30}


def test_one_off_and_schedule():
    journey = campaign(
        [SEND_A], trigger={"one_off": {"at": "2026-03-02T09:00"}}, schedule="0 7 * * 1-5"
    )
    assert journey.trigger.one_off.at == dt.datetime(2026, 3, 2, 9, 0)
    assert campaign([SEND_A], schedule=None).schedule is None
    assert campaign([SEND_A]).schedule == "@hourly"
    assert campaign([SEND_A], costs={"concept": 100, "tickets": 50.5}).costs.fixed_total() == 150.5
