"""The journey diagram (Mermaid) and the step order the campaign DAGs are built from."""

from __future__ import annotations

import pytest
import yaml

from leadflow.campaigns.diagram import escape, filter_text, journey_order, mermaid
from leadflow.config import load_config
from leadflow.config.campaigns import Campaign, flow_issues
from leadflow.paths import PROJECT_ROOT

# Every step kind; labels with quotes, brackets, markup and Mermaid's own characters; a
# loop back through a wait (still_cold → nudge); an exit step and an end of the list (call).
SMALL = """
id: small
name: Small journey
tenants: [hq]
trigger:
  event: {type: form_submit, form: contact_us}
steps:
  - id: hello
    send: {message: hello, content: ['Say "hi" [now] & #1']}
  - id: pause
    wait: {until: {days: [tue, thu], start: "09:00", end: "11:30"}}
  - id: opened_hello
    branch: {"on": opened, since_step: hello, then: tag_fan, else: nudge}
  - id: nudge
    send: {message: nudge}
  - id: wait_nudge
    wait: {duration: 2w}
  - id: still_cold
    branch:
      filter: {field: lifecycle_stage, op: in, value: [lead]}
      then: nudge
      else: tell_owner
  - id: tag_fan
    update: {set: {tag: fan, stage: mql}}
    next: bye
  - id: bye
    exit: {reason: "fan (tagged)"}
  - id: tell_owner
    notify_owner: {message: warm_lead}
  - id: call
    crm_task: {subject: 'Call {urgent} <b>|now|</b>', type: call, due_in_days: 1}
goal: {event: {type: purchase, product_family: hydrostat}}
exit_rules:
  - {id: unsubscribed, event: {type: unsubscribe}}
  - filter: {any: [{field: country, op: "=", value: FR}, {field: tags, op: contains, value: x}]}
"""

SMALL_MERMAID = """\
flowchart TD
    trigger(["on form_submit form contact_us"])
    step_hello["hello<br/>send hello<br/>content: Say #quot;hi#quot; #91;now#93; #amp; #35;1"]
    step_pause{{"pause<br/>wait until tue, thu 09:00–11:30"}}
    step_opened_hello{"opened_hello<br/>opened since hello?"}
    step_nudge["nudge<br/>send nudge"]
    step_wait_nudge{{"wait_nudge<br/>wait 2w"}}
    step_still_cold{"still_cold<br/>lifecycle_stage in #91;lead#93;?"}
    step_tag_fan[/"tag_fan<br/>add tag fan<br/>stage mql"/]
    step_bye(("bye<br/>exit: fan #40;tagged#41;"))
    step_tell_owner[["tell_owner<br/>notify owner: warm_lead"]]
    step_call[/"call<br/>CRM call: Call #123;urgent#125; #lt;b#gt;#124;now#124;#lt;/b#gt;<br/>due in 1 day"\\]
    journey_end(("end"))
    rules>"goal: event purchase product_family hydrostat<br/>exit unsubscribed: event unsubscribe<br/>exit 2: any#40;country = FR, tags contains x#41;"]
    trigger --> step_hello
    step_hello --> step_pause
    step_pause --> step_opened_hello
    step_opened_hello -->|then| step_tag_fan
    step_opened_hello -->|else| step_nudge
    step_nudge --> step_wait_nudge
    step_wait_nudge --> step_still_cold
    step_still_cold -->|then| step_nudge
    step_still_cold -->|else| step_tell_owner
    step_tag_fan --> step_bye
    step_tell_owner --> step_call
    step_call --> journey_end
    classDef note fill:#fff8c4,stroke:#c9b458,color:#333
    class rules note
"""  # noqa: E501


def campaign_from(text: str) -> Campaign:
    campaign = Campaign.model_validate(yaml.safe_load(text))
    assert flow_issues(campaign) == []
    return campaign


def test_the_mermaid_text_of_a_small_campaign() -> None:
    assert mermaid(campaign_from(SMALL)) == SMALL_MERMAID


def test_a_campaign_without_goal_or_exit_rules_has_no_note() -> None:
    campaign = campaign_from("""
id: tiny
name: Tiny
tenants: [fr]
trigger: {one_off: {at: 2026-05-04}}
steps:
  - {id: end, send: {message: news}}
""")
    assert mermaid(campaign) == (
        "flowchart TD\n"
        '    trigger(["once at 2026-05-04"])\n'
        '    step_end["end<br/>send news"]\n'
        '    journey_end(("end"))\n'
        "    trigger --> step_end\n"
        "    step_end --> journey_end\n"
    )


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ('a "b"', "a #quot;b#quot;"),
        ("x[1](2){3}", "x#91;1#93;#40;2#41;#123;3#125;"),
        ("<script>&amp;", "#lt;script#gt;#amp;amp;"),
        ("a|b`c#d", "a#124;b#96;c#35;d"),
        ("two\nlines\t here", "two lines here"),
    ],
)
def test_labels_are_escaped(text: str, escaped: str) -> None:
    assert escape(text) == escaped


def test_long_filters_are_cut() -> None:
    campaign = campaign_from(SMALL)
    long_filter = campaign.exit_rules[1].filter.model_copy(
        update={"conditions": campaign.exit_rules[1].filter.conditions * 10}
    )
    text = filter_text(long_filter)
    assert len(text) == 80
    assert text.startswith("any(country = FR, tags contains x, country = FR,")
    assert text.endswith("…")


def test_journey_order_drops_the_edge_that_closes_a_loop() -> None:
    # still_cold → nudge closes the loop nudge → wait_nudge → still_cold: left out, so nudge
    # follows only opened_hello. Among ready steps the file order decides (nudge before
    # tag_fan; tag_fan and bye before tell_owner).
    assert journey_order(campaign_from(SMALL)) == [
        ("hello", []),
        ("pause", ["hello"]),
        ("opened_hello", ["pause"]),
        ("nudge", ["opened_hello"]),
        ("wait_nudge", ["nudge"]),
        ("still_cold", ["wait_nudge"]),
        ("tag_fan", ["opened_hello"]),
        ("bye", ["tag_fan"]),
        ("tell_owner", ["still_cold"]),
        ("call", ["tell_owner"]),
    ]


def test_journey_order_lists_a_join_after_all_its_branches() -> None:
    campaign = campaign_from("""
id: join
name: Join
tenants: [hq]
trigger: {segment_entry: {segment: loyal_customers}}
steps:
  - id: ask
    branch: {filter: {field: country, op: "=", value: DE}, then: german, else: other}
  - {id: other, send: {message: other}, next: together}
  - {id: german, send: {message: german}}
  - {id: together, wait: {duration: 1d}}
""")
    assert journey_order(campaign) == [
        ("ask", []),
        ("other", ["ask"]),
        ("german", ["ask"]),
        ("together", ["other", "german"]),
    ]


EXAMPLES = load_config(PROJECT_ROOT / "include" / "config").campaigns


@pytest.mark.parametrize("campaign_id", sorted(EXAMPLES))
def test_every_example_campaign_renders_and_orders(campaign_id: str) -> None:
    campaign = EXAMPLES[campaign_id]
    text = mermaid(campaign)
    assert text.startswith("flowchart TD\n    trigger([")
    for step in campaign.steps:
        assert text.count(f"\n    step_{step.id}") >= 1  # its node (and its edges)
    order = journey_order(campaign)
    assert sorted(step_id for step_id, _ in order) == sorted(step.id for step in campaign.steps)
    position = {step_id: number for number, (step_id, _) in enumerate(order)}
    edges = {
        (step.id, target)
        for index, step in enumerate(campaign.steps)
        for _label, target in campaign.successors(index)
    }
    for step_id, predecessors in order:
        for predecessor in predecessors:
            assert position[predecessor] < position[step_id]
            assert (predecessor, step_id) in edges
    # The examples have no loops: every edge of the journey is kept.
    assert {(p, s) for s, predecessors in order for p in predecessors} == edges
    assert order[0] == (campaign.steps[0].id, [])


def test_the_examples_are_all_there() -> None:
    assert len(EXAMPLES) == 7
