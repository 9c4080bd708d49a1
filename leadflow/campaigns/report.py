"""`leadflow campaign status ID` and `leadflow campaign simulate ID --days N`.

status: where the campaign's journeys are at `now` — active journeys per current step (due
now / waiting), its pending outbox rows (due / deferred past now), and the ended journeys by
status and reason.

simulate: time travel over the warehouse as it is. For each day D from `start_as_of` on, a
run at now_for(D) (D + 1 day 00:00 UTC) enrols and advances, like the daily DAG run would —
all inside one transaction that is rolled back at the end, so nothing persists and no mail
is ever handed to the dispatcher. It reports per day what happened, and the paths taken: for
every step, how many journeys left it with which outcome towards which step (the history
rows the simulation wrote; the data does not change while simulating, so behaviour branches
see only the events already in the warehouse).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadflow.campaigns.advance import advance_on
from leadflow.campaigns.clock import checked_now, now_for
from leadflow.campaigns.enrol import enrol_on
from leadflow.campaigns.report_text import table
from leadflow.campaigns.state import campaign_for
from leadflow.config.campaigns import step_kind
from leadflow.config.loader import Config
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations

ENDED = "(ended)"


@dataclass(frozen=True)
class StepCount:
    step_id: str
    kind: str
    active: int
    due: int
    waiting: int


@dataclass(frozen=True)
class StatusReport:
    """The campaign's journeys at `now`."""

    campaign_id: str
    now: dt.datetime
    steps: list[StepCount]
    # pending outbox rows: scheduled at or before now / deferred past now
    pending_due: int
    pending_deferred: int
    # (status, reason) → journeys, for ended journeys
    ended: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def active(self) -> int:
        return sum(step.active for step in self.steps)

    def count(self, status: str) -> int:
        return sum(n for (ended_status, _reason), n in self.ended.items() if ended_status == status)

    def describe(self) -> str:
        rows = [(s.step_id, s.kind, s.active, s.due, s.waiting) for s in self.steps]
        parts = [
            f"campaign {self.campaign_id} at {self.now:%Y-%m-%d %H:%M} UTC: "
            f"{self.active} active, {self.count('completed')} completed, "
            f"{self.count('exited')} exited, {self.count('converted')} converted",
            table(["step", "kind", "active", "due now", "waiting"], rows),
            "",
            table(
                ["outbox (pending)", "rows"],
                [("due", self.pending_due), ("deferred", self.pending_deferred)],
            ),
        ]
        if self.ended:
            ended = [(status, reason, n) for (status, reason), n in self.ended.items()]
            parts += ["", table(["ended", "reason", "journeys"], ended)]
        return "\n".join(parts)


def status(engine: Engine, config: Config, campaign_id: str, now: dt.datetime) -> StatusReport:
    """Journeys per step, pending sends and ended journeys of the campaign at `now`."""
    campaign = campaign_for(config, campaign_id)
    now = checked_now(now)
    parameters = {"campaign_id": campaign.id, "now": now}
    with engine.connect() as connection:
        per_step = {
            row.step_id: row
            for row in connection.execute(
                sa.text(
                    "select step_id, count(*) as active, "
                    "count(*) filter (where due_at <= :now) as due "
                    "from ops.campaign_enrolments "
                    "where campaign_id = :campaign_id and status = 'active' group by step_id"
                ),
                parameters,
            )
        }
        ended = {
            (row.status, row.end_reason): row.journeys
            for row in connection.execute(
                sa.text(
                    "select status, end_reason, count(*) as journeys "
                    "from ops.campaign_enrolments "
                    "where campaign_id = :campaign_id and status <> 'active' "
                    "group by status, end_reason order by status, end_reason"
                ),
                parameters,
            )
        }
        pending = connection.execute(
            sa.text(
                "select count(*) filter (where scheduled_at <= :now), "
                "count(*) filter (where scheduled_at > :now) "
                "from ops.outbox where campaign_id = :campaign_id and status = 'pending'"
            ),
            parameters,
        ).one()
    steps = []
    for step in campaign.steps:
        row = per_step.get(step.id)
        active, due = (row.active, row.due) if row else (0, 0)
        steps.append(StepCount(step.id, step_kind(step), active, due, active - due))
    return StatusReport(
        campaign_id=campaign.id,
        now=now,
        steps=steps,
        pending_due=pending[0],
        pending_deferred=pending[1],
        ended=ended,
    )


# --- simulation ------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedDay:
    as_of: dt.date
    enrolled: int
    steps_taken: int
    ended: int


@dataclass(frozen=True)
class PathCount:
    """Journeys that left `step_id` with `outcome` towards `next_step` (ENDED: journey over)."""

    step_id: str
    outcome: str
    next_step: str
    journeys: int


@dataclass(frozen=True)
class SimulationReport:
    campaign_id: str
    start_as_of: dt.date
    days: list[SimulatedDay]
    paths: list[PathCount]
    # where the simulated journeys stand at the end: active per step, ended per status
    final: dict[str, int] = field(default_factory=dict)

    def path(self, step_id: str, outcome: str) -> int:
        return sum(p.journeys for p in self.paths if (p.step_id, p.outcome) == (step_id, outcome))

    def describe(self) -> str:
        last = self.days[-1].as_of if self.days else self.start_as_of
        parts = [
            f"campaign {self.campaign_id}: simulated {len(self.days)} day(s), "
            f"as_of {self.start_as_of} … {last} (rolled back: nothing persisted, no mail sent)",
            table(
                ["as_of", "enrolled", "steps taken", "ended"],
                [(d.as_of.isoformat(), d.enrolled, d.steps_taken, d.ended) for d in self.days],
            ),
            "",
            table(
                ["step", "outcome", "next", "journeys"],
                [(p.step_id, p.outcome, p.next_step, p.journeys) for p in self.paths],
            ),
        ]
        if self.final:
            parts += ["", table(["at the end", "journeys"], list(self.final.items()))]
        return "\n".join(parts)


_PATHS = sa.text(
    """
    with taken as (
        select h.step_id, h.outcome, h.step_seq, h.completed_at,
               coalesce(lead(h.step_id) over journey, e.step_id) as next_step
        from ops.campaign_step_history as h
        join ops.campaign_enrolments as e using (enrolment_id)
        where e.campaign_id = :campaign_id
        window journey as (partition by h.enrolment_id order by h.step_seq)
    )
    select step_id, outcome, coalesce(next_step, :ended) as next_step, count(*) as journeys
    from taken
    where completed_at >= :since and outcome not in ('exited', 'converted')
    group by 1, 2, 3
    union all
    select step_id, outcome, :ended, count(*)
    from taken
    where completed_at >= :since and outcome in ('exited', 'converted')
    group by 1, 2
    """
)


def simulate(
    engine: Engine,
    config: Config,
    campaign_id: str,
    start_as_of: dt.date,
    days: int,
    *,
    relations: Relations = DEFAULT_RELATIONS,
) -> SimulationReport:
    """Run the campaign daily for `days` days from `start_as_of`, report, roll everything back."""
    campaign = campaign_for(config, campaign_id)
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    start = now_for(start_as_of)
    simulated = []
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            for offset in range(days):
                as_of = start_as_of + dt.timedelta(days=offset)
                now = now_for(as_of)
                enrolled = enrol_on(connection, config, campaign, now, relations=relations)
                advanced = advance_on(connection, config, campaign, now, relations=relations)
                simulated.append(
                    SimulatedDay(
                        as_of=as_of,
                        enrolled=enrolled.enrolled,
                        steps_taken=advanced.advanced,
                        ended=sum(advanced.ended.values()),
                    )
                )
            paths = _paths(connection, campaign, start)
            final = _final(connection, campaign, start)
        finally:
            transaction.rollback()
    return SimulationReport(campaign.id, start_as_of, simulated, paths, final)


def _paths(connection, campaign, since: dt.datetime) -> list[PathCount]:
    order = {step.id: index for index, step in enumerate(campaign.steps)}
    rows = connection.execute(
        _PATHS, {"campaign_id": campaign.id, "since": since, "ended": ENDED}
    ).all()
    counts = [PathCount(row[0], row[1], row[2], row[3]) for row in rows]
    return sorted(counts, key=lambda p: (order.get(p.step_id, len(order)), p.outcome, p.next_step))


def _final(connection, campaign, since: dt.datetime) -> dict[str, int]:
    """Journeys touched by the simulation: active per current step, ended per status."""
    rows = connection.execute(
        sa.text(
            "select case when status = 'active' then 'at ' || step_id else status end, count(*) "
            "from ops.campaign_enrolments where campaign_id = :campaign_id "
            "and (status = 'active' or ended_at >= :since) group by 1 order by 1"
        ),
        {"campaign_id": campaign.id, "since": since},
    ).all()
    return {label: count for label, count in rows}


__all__ = [
    "PathCount",
    "SimulatedDay",
    "SimulationReport",
    "StatusReport",
    "StepCount",
    "simulate",
    "status",
]
