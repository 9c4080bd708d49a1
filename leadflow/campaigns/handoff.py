"""What a campaign run hands to the dispatcher: its outbox rows that are due now.

The journeys write every mail they produce into `ops.outbox` with `scheduled_at`, the
earliest moment it may go out (send window, frequency cap). The dispatcher (SPEC §2.8)
claims pending rows whose moment has come; until it exists, the campaign DAG's last task
reports them, so a run's log shows what it made ready and what it deferred:

    due_sends(engine, "onboarding", now).describe()
    # onboarding at 2026-11-27T08:00:00+00:00: 12 due (10 campaign_mail,
    #   2 owner_notification), 3 deferred

Rows are counted, never changed: claiming is the dispatcher's job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from leadflow.campaigns.clock import checked_now

_PENDING = sa.text(
    """
    select kind, count(*) filter (where scheduled_at <= :now) as due,
           count(*) filter (where scheduled_at > :now) as deferred
    from ops.outbox
    where campaign_id = :campaign_id and status = 'pending'
    group by kind
    order by kind
    """
)


@dataclass(frozen=True)
class DueSends:
    """The pending outbox rows of one campaign at `now`: due (by kind) and still deferred."""

    campaign_id: str
    now: dt.datetime
    due_by_kind: dict[str, int] = field(default_factory=dict)
    deferred: int = 0

    @property
    def due(self) -> int:
        return sum(self.due_by_kind.values())

    def counts(self) -> dict[str, int]:
        """JSON-ready figures (the campaign task's XCom)."""
        return {"due": self.due, **self.due_by_kind, "deferred": self.deferred}

    def describe(self) -> str:
        kinds = ", ".join(f"{count} {kind}" for kind, count in self.due_by_kind.items() if count)
        due = f"{self.due} due" + (f" ({kinds})" if kinds else "")
        return f"{self.campaign_id} at {self.now.isoformat()}: {due}, {self.deferred} deferred"


def due_sends(engine: sa.Engine, campaign_id: str, now: dt.datetime) -> DueSends:
    """Count the campaign's pending outbox rows scheduled at or before `now` (and after)."""
    now = checked_now(now)
    with engine.connect() as connection:
        rows = connection.execute(_PENDING, {"campaign_id": campaign_id, "now": now}).all()
    return DueSends(
        campaign_id=campaign_id,
        now=now,
        due_by_kind={row.kind: row.due for row in rows},
        deferred=sum(row.deferred for row in rows),
    )


__all__ = ["DueSends", "due_sends"]
