"""`leadflow campaign run ID --as-of D [--dry-run]`: enrol, then advance, as one recorded run.

`run_campaign(engine, config, campaign_id, now)` enrols and advances in one transaction and
writes one `ops.campaign_runs` row with the figures (enrolled, steps taken, journeys ended,
outbox rows made). With `dry_run=True` the same work happens inside a savepoint that is
rolled back: the report says what a real run would do, and only the `ops.campaign_runs` row
(dry_run = true) remains — no enrolment, history, outbox row, CRM task or contact change.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from leadflow.campaigns.advance import AdvanceReport, advance_on
from leadflow.campaigns.clock import as_of_for, checked_now
from leadflow.campaigns.enrol import EnrolReport, enrol_on
from leadflow.campaigns.report_text import table
from leadflow.campaigns.state import campaign_for
from leadflow.config.loader import Config
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations


@dataclass(frozen=True)
class RunReport:
    """One campaign run: its enrolment and advance reports and the outbox rows it made."""

    run_id: int
    campaign_id: str
    now: dt.datetime
    as_of: dt.date
    dry_run: bool
    enrol: EnrolReport
    advance: AdvanceReport
    # new ops.outbox rows by kind, and how many of them are deferred past now
    outbox: dict[str, int] = field(default_factory=dict)
    deferred: int = 0

    def describe(self) -> str:
        mode = "dry run (nothing written)" if self.dry_run else f"run {self.run_id}"
        rows = [
            ("enrolled", self.enrol.enrolled),
            ("steps taken", self.advance.advanced),
            ("journeys ended", sum(self.advance.ended.values())),
            *((f"outbox: {kind}", count) for kind, count in self.outbox.items()),
            ("outbox: deferred", self.deferred),
        ]
        return "\n".join(
            [
                f"campaign {self.campaign_id}: {mode} at {self.now:%Y-%m-%d %H:%M} UTC "
                f"(as_of {self.as_of})",
                table(["", "count"], rows),
                "",
                self.enrol.describe(),
                "",
                self.advance.describe(),
            ]
        )

    def detail(self) -> dict:
        return {
            "occurrences": self.enrol.occurrences,
            "in_audience": self.enrol.in_audience,
            "moved": self.advance.moved,
            "ended": {
                f"{status}:{reason}": n for (status, reason), n in self.advance.ended.items()
            },
            "outbox": self.outbox,
            "deferred": self.deferred,
        }


def run_campaign(
    engine: Engine,
    config: Config,
    campaign_id: str,
    now: dt.datetime,
    *,
    dry_run: bool = False,
    relations: Relations = DEFAULT_RELATIONS,
) -> RunReport:
    """Enrol and advance the campaign at `now`, recorded in ops.campaign_runs."""
    campaign = campaign_for(config, campaign_id)
    now = checked_now(now)
    with engine.begin() as connection:
        run_id = connection.execute(
            sa.text(
                "insert into ops.campaign_runs (campaign_id, now, as_of, dry_run) "
                "values (:campaign_id, :now, :as_of, :dry_run) returning run_id"
            ),
            {"campaign_id": campaign.id, "now": now, "as_of": as_of_for(now), "dry_run": dry_run},
        ).scalar_one()
        work = connection.begin_nested()
        last_outbox_id = _last_outbox_id(connection)
        enrolled = enrol_on(connection, config, campaign, now, relations=relations)
        advanced = advance_on(connection, config, campaign, now, relations=relations)
        outbox, deferred = _new_outbox_rows(connection, campaign.id, now, last_outbox_id)
        if dry_run:
            work.rollback()
        else:
            work.commit()
        report = RunReport(
            run_id=run_id,
            campaign_id=campaign.id,
            now=now,
            as_of=as_of_for(now),
            dry_run=dry_run,
            enrol=enrolled,
            advance=advanced,
            outbox=outbox,
            deferred=deferred,
        )
        connection.execute(
            sa.text(
                "update ops.campaign_runs set finished_at = clock_timestamp(), "
                "enrolled = :enrolled, advanced = :advanced, detail = cast(:detail as jsonb) "
                "where run_id = :run_id"
            ),
            {
                "run_id": run_id,
                "enrolled": enrolled.enrolled,
                "advanced": advanced.advanced,
                "detail": json.dumps(report.detail()),
            },
        )
    return report


def _last_outbox_id(connection: Connection) -> int:
    return connection.execute(
        sa.text("select coalesce(max(outbox_id), 0) from ops.outbox")
    ).scalar_one()


def _new_outbox_rows(
    connection: Connection, campaign_id: str, now: dt.datetime, after_id: int
) -> tuple[dict[str, int], int]:
    rows = connection.execute(
        sa.text(
            "select kind, count(*) as made, count(*) filter (where scheduled_at > :now) as later "
            "from ops.outbox where campaign_id = :campaign_id and outbox_id > :after_id "
            "group by kind order by kind"
        ),
        {"campaign_id": campaign_id, "now": now, "after_id": after_id},
    ).all()
    return {row.kind: row.made for row in rows}, sum(row.later for row in rows)


__all__ = ["RunReport", "run_campaign"]
