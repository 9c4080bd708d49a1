"""Advancing journeys: end those that must stop, then run every due step until nothing moves.

`advance(engine, config, campaign_id, now)` works in one transaction holding the campaign's
advisory lock (runs of one campaign take turns; the send-time planner's lock keeps the
frequency cap across campaigns):
1. end journeys (endings.py): unsubscribed, exit rules, left the audience, goal reached;
2. run the steps (steps.py) in list order, each for all its due journeys at once, and
   repeat the round while anything moved — a journey passes several instantaneous steps
   (branch, update, crm_task, a send at an open window ...) in one run, up to the first step
   that is not due yet. A round per step is the most a journey can need, and a loop in the
   journey passes a wait, so the rounds are bounded by 2 × the number of steps.

`step_id=X` runs only step X once, for the journeys due there (the campaign DAG has one task
per step, in journey order); journeys are still ended first.

Re-running the same `now` changes nothing: every due journey moved on (its step_seq grew),
and what is not due stays put; history, outbox and contact changes are keyed by
(enrolment, step_seq) so a step position is never done twice.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection, Engine

from leadflow.campaigns.clock import as_of_for, checked_now
from leadflow.campaigns.endings import end_journeys
from leadflow.campaigns.report_text import table
from leadflow.campaigns.state import CampaignError, campaign_for, lock_campaign, use_utc
from leadflow.campaigns.steps import StepScope, prepare, run_step
from leadflow.config.campaigns import Campaign
from leadflow.config.loader import Config
from leadflow.segments.preview import segment_filters
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations


@dataclass(frozen=True)
class AdvanceReport:
    """What one advance did: journeys ended (by status and reason) and moves per step."""

    campaign_id: str
    now: dt.datetime
    as_of: dt.date
    ended: dict[tuple[str, str], int] = field(default_factory=dict)
    # step id → journeys that took that step in this run (in step order)
    moved: dict[str, int] = field(default_factory=dict)
    rounds: int = 0

    @property
    def advanced(self) -> int:
        """Steps taken in this run (a journey passing three steps counts three)."""
        return sum(self.moved.values())

    def describe(self) -> str:
        title = (
            f"campaign {self.campaign_id}: advance at {self.now:%Y-%m-%d %H:%M} UTC "
            f"(as_of {self.as_of}), {self.advanced} step(s) taken in {self.rounds} round(s)"
        )
        parts = [title]
        if self.moved:
            parts.append(table(["step", "journeys"], list(self.moved.items())))
        if self.ended:
            rows = [(status, reason, count) for (status, reason), count in self.ended.items()]
            parts.append(table(["ended", "reason", "journeys"], rows))
        return "\n".join(parts)


def advance(
    engine: Engine,
    config: Config,
    campaign_id: str,
    now: dt.datetime,
    *,
    relations: Relations = DEFAULT_RELATIONS,
    step_id: str | None = None,
) -> AdvanceReport:
    """End journeys that must stop, then run due steps (all to the fixpoint, or `step_id`)."""
    campaign = campaign_for(config, campaign_id)
    with engine.begin() as connection:
        return advance_on(connection, config, campaign, now, relations=relations, step_id=step_id)


def advance_on(
    connection: Connection,
    config: Config,
    campaign: Campaign,
    now: dt.datetime,
    *,
    relations: Relations = DEFAULT_RELATIONS,
    step_id: str | None = None,
) -> AdvanceReport:
    """`advance` inside the caller's transaction."""
    now = checked_now(now)
    indexes = _step_indexes(campaign, step_id)
    as_of = as_of_for(now)
    use_utc(connection)
    lock_campaign(connection, campaign.id)
    ended = end_journeys(connection, config, campaign, now, as_of, relations)
    prepare(connection, config)
    scope = StepScope(config, campaign, now, as_of, relations, segment_filters(config))
    moved: Counter[str] = Counter()
    rounds = 0
    limit = 1 if step_id is not None else 2 * len(campaign.steps)
    while rounds < limit:
        rounds += 1
        moved_this_round = 0
        for index in indexes:
            count = run_step(connection, scope, index)
            moved[campaign.steps[index].id] += count
            moved_this_round += count
        if not moved_this_round:
            break
    return AdvanceReport(
        campaign_id=campaign.id,
        now=now,
        as_of=as_of,
        ended=dict(sorted(ended.items())),
        moved={step.id: moved[step.id] for step in campaign.steps if moved[step.id]},
        rounds=rounds,
    )


def _step_indexes(campaign: Campaign, step_id: str | None) -> list[int]:
    if step_id is None:
        return list(range(len(campaign.steps)))
    for index, step in enumerate(campaign.steps):
        if step.id == step_id:
            return [index]
    known = ", ".join(step.id for step in campaign.steps)
    raise CampaignError(f"campaign {campaign.id!r} has no step {step_id!r}; steps: {known}")


__all__ = ["AdvanceReport", "advance", "advance_on"]
