"""Lead routing (SPEC §2.4): MQLs without an owner → team by the first matching rule →
member round-robin; recorded once in ops, the owner notified by mail, the CRM push queued.

    from leadflow.routing import route
    report = route(engine, config, as_of)            # the nightly step / `leadflow route`
    report = route(engine, config, as_of, dry_run=True)

rules.py decides (one SQL query, rules compiled by the one filter compiler), assign.py
assigns and records a batch, notify.py mails the owners, run.py strings them together.
See docs/routing.md.
"""

from leadflow.routing.assign import (
    Assignment,
    RoutingResult,
    forget_routing,
    next_member,
    round_robin,
    route_leads,
)
from leadflow.routing.notify import (
    Notification,
    NotificationError,
    SmtpSettings,
    pending_notifications,
    send_pending_notifications,
)
from leadflow.routing.rules import RoutingRuleError, WaitingLead, waiting_leads_query
from leadflow.routing.run import RoutingReport, require_marts_built_for, route

__all__ = [
    "Assignment",
    "Notification",
    "NotificationError",
    "RoutingReport",
    "RoutingResult",
    "RoutingRuleError",
    "SmtpSettings",
    "WaitingLead",
    "forget_routing",
    "next_member",
    "pending_notifications",
    "require_marts_built_for",
    "round_robin",
    "route",
    "route_leads",
    "send_pending_notifications",
    "waiting_leads_query",
]
