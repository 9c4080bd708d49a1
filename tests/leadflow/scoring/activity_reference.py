"""A pure-Python reading of SPEC §2.4's activity score, written from the spec, not from the SQL.

activity points(C) = Σ over human events of known contacts before the cut-off C, for each
activity rule the event matches, points × 0.5^(age_days / half-life), age_days the
fractional days from the event to C. Rule filters: link tag, asset, mailing (exact), URL
pattern (a `*` glob; starting with `/` it matches the URL's path, else the whole URL).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from leadflow.config.models import ActivityRule

_SCHEME_AND_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


def url_matches(url: str | None, pattern: str) -> bool:
    if url is None:
        return False
    target = url
    if pattern.startswith("/"):
        target = _SCHEME_AND_HOST.sub("", url, count=1) or "/"
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, target, flags=re.DOTALL) is not None


def rule_matches(rule: ActivityRule, event: Mapping[str, Any]) -> bool:
    return (
        rule.event_type == event["event_type"]
        and (rule.link_tag is None or event.get("link_tag") == rule.link_tag)
        and (rule.asset is None or event.get("asset_id") == rule.asset)
        and (rule.mailing is None or event.get("mailing_id") == rule.mailing)
        and (rule.url_pattern is None or url_matches(event.get("url"), rule.url_pattern))
    )


def activity_points(
    events: Iterable[Mapping[str, Any]],
    rules: list[ActivityRule],
    cutoff: dt.datetime,
    half_life_days: float,
) -> dict[str, float]:
    """Unclamped activity points per contact with at least one matching event."""
    points: dict[str, float] = defaultdict(float)
    for event in events:
        if event["is_machine"] or event["contact_id"] is None:
            continue
        if event["occurred_at"] >= cutoff:
            continue
        age_days = (cutoff - event["occurred_at"]).total_seconds() / 86400
        for rule in rules:
            if rule_matches(rule, event):
                points[event["contact_id"]] += rule.points * 0.5 ** (age_days / half_life_days)
    return dict(points)
