"""The routing step of the nightly run and of `leadflow route --as-of D`.

    report = route(engine, config, as_of)                # route, then mail the owners
    report = route(engine, config, as_of, dry_run=True)  # what would be routed; no writes

It checks that the marts were built for `as_of` (routing reads is_mql and the rest from
marts.dim_contacts), routes the waiting MQLs in one batch (leadflow.routing.assign) and sends
every notification still pending, this batch's and any an earlier run could not send
(leadflow.routing.notify).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadflow.config.loader import Config
from leadflow.errors import LeadflowError
from leadflow.routing.assign import RoutingResult, route_leads
from leadflow.routing.notify import (
    Notification,
    NotificationError,
    SmtpSettings,
    send_pending_notifications,
)
from leadflow.segments.relations import DEFAULT_RELATIONS, Relations


@dataclass(frozen=True)
class RoutingReport:
    routing: RoutingResult
    notifications: list[Notification] = field(default_factory=list)
    smtp: SmtpSettings | None = None

    def describe(self) -> str:
        lines = [self.routing.describe()]
        if self.notifications:
            owners = len({n.owner_email for n in self.notifications})
            lines.append(
                f"  {len(self.notifications)} notification mail(s) sent to {owners} owner(s)"
                f" via SMTP {self.smtp}"
            )
        elif not self.routing.dry_run:
            lines.append("  no notification mail to send")
        return "\n".join(lines)

    def summary(self) -> dict:
        """What ops.runs records for the routing step."""
        return {
            "batch_id": self.routing.batch_id,
            "routed": len(self.routing.assignments),
            "unmatched": len(self.routing.unmatched),
            "per_owner": {
                f"{team}/{owner}": count
                for (team, owner), count in self.routing.per_owner().items()
            },
            "notifications_sent": len(self.notifications),
        }


def route(
    engine: Engine,
    config: Config,
    as_of: dt.date,
    *,
    dry_run: bool = False,
    smtp: SmtpSettings | None = None,
    relations: Relations = DEFAULT_RELATIONS,
) -> RoutingReport:
    """Route the MQLs waiting for an owner and notify their new owners (see module docstring)."""
    if relations.contacts == DEFAULT_RELATIONS.contacts:
        require_marts_built_for(engine, as_of)
    result = route_leads(engine, config, as_of, relations=relations, dry_run=dry_run)
    if dry_run:
        return RoutingReport(result)
    smtp = smtp or SmtpSettings.from_env(config)
    try:
        sent = send_pending_notifications(engine, config, smtp)
    except NotificationError as error:
        # The routing stands (committed); say so, and what resends the mail.
        raise NotificationError(f"{result.describe()}\n{error}") from error
    return RoutingReport(result, sent, smtp)


def require_marts_built_for(engine: Engine, as_of: dt.date) -> None:
    """marts.dim_contacts exists and was built for `as_of`, else a LeadflowError saying why."""
    with engine.connect() as connection:
        if connection.execute(sa.text("select to_regclass('marts.dim_contacts')")).scalar() is None:
            raise LeadflowError(
                "marts.dim_contacts does not exist: build the marts first "
                f"(`leadflow build --as-of {as_of}`)"
            )
        built = connection.execute(
            sa.text("select distinct as_of from marts.dim_contacts order by 1")
        ).scalars()
        built_for = list(built)
    if built_for and built_for != [as_of]:
        dates = ", ".join(str(day) for day in built_for)
        raise LeadflowError(
            f"marts.dim_contacts was built for {dates}, not {as_of}: routing reads its MQLs; "
            f"run `leadflow build --as-of {as_of}` first"
        )
