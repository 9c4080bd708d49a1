"""Machine traffic: opens and clicks no person made (SPEC §2.2).

Privacy proxies fetch every image of a mail (Apple Mail Privacy Protection, Gmail's image
proxy) and security gateways follow every link before the recipient sees the mail. Those
requests are real and are stored, but with `is_machine = true`, so scores, branches and
rates ignore them. The rules, each configurable in `company.tracking.machine_traffic`:

- `user_agent`: the User-Agent contains one of the patterns (case-insensitive substring;
  shipped defaults in include/config/tracking/machine_user_agents.txt);
- `ip_range`: the client address lies in one of the networks (CIDR; shipped defaults in
  include/config/tracking/machine_ip_ranges.txt);
- `too_fast` (clicks only): the click came less than `min_seconds_after_delivery` after the
  mail was sent (`ops.outbox.sent_at`) — a scanner follows links within seconds, a person
  does not;
- `honeypot` (clicks only): the link carries the honeypot tag: it is hidden from people, so
  whoever follows it is a machine.

`reason` answers the first rule that matches (stored in the event's properties as
`machine_reason`), or None for a person. It runs on every open and click, so the patterns
are one compiled alternation and the answers for a user agent or an address are cached
(the same few browsers, proxies and scanners send most requests).
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Kind = Literal["open", "click"]
# Distinct user agents and client addresses whose answer is remembered, per rule set.
CACHE_SIZE = 4096


@dataclass(frozen=True)
class MachineRules:
    user_agents: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()
    min_seconds_after_delivery: float = 0.0
    honeypot_link_tag: str | None = None
    _agent_matches: Any = field(init=False, repr=False, compare=False)
    _address_matches: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Caches per instance (not functools.cache on methods): they go with the rules.
        agent_matches = functools.lru_cache(CACHE_SIZE)(
            functools.partial(_contains_pattern, search=_pattern_search(self.user_agents))
        )
        address_matches = functools.lru_cache(CACHE_SIZE)(
            functools.partial(_in_networks, networks=self.networks)
        )
        object.__setattr__(self, "_agent_matches", agent_matches)
        object.__setattr__(self, "_address_matches", address_matches)

    @classmethod
    def build(
        cls,
        user_agents: Iterable[str] = (),
        ip_ranges: Iterable[str] = (),
        min_seconds_after_delivery: float = 0.0,
        honeypot_link_tag: str | None = None,
    ) -> MachineRules:
        return cls(
            user_agents=tuple(p.strip().lower() for p in user_agents if p.strip()),
            networks=tuple(
                ipaddress.ip_network(r.strip(), strict=False) for r in ip_ranges if r.strip()
            ),
            min_seconds_after_delivery=float(min_seconds_after_delivery),
            honeypot_link_tag=honeypot_link_tag or None,
        )

    @classmethod
    def from_config(cls, config: Any) -> MachineRules:
        """The rules of `company.tracking.machine_traffic` (pattern files already read)."""
        machine = config.company.tracking.machine_traffic
        return cls.build(
            machine.user_agents.patterns,
            machine.ip_ranges.patterns,
            machine.min_seconds_after_delivery,
            machine.honeypot_link_tag,
        )

    def reason(
        self,
        kind: Kind,
        *,
        user_agent: str | None,
        ip: str | None,
        occurred_at: dt.datetime | None = None,
        sent_at: dt.datetime | None = None,
        link_tag: str | None = None,
    ) -> str | None:
        """Why the request is machine traffic (the first matching rule), or None."""
        if kind == "click":
            if self.honeypot_link_tag is not None and link_tag == self.honeypot_link_tag:
                return "honeypot"
            if self._too_fast(occurred_at, sent_at):
                return "too_fast"
        if user_agent and self._agent_matches(user_agent):
            return "user_agent"
        if ip and self._address_matches(ip):
            return "ip_range"
        return None

    def _too_fast(self, occurred_at: dt.datetime | None, sent_at: dt.datetime | None) -> bool:
        if occurred_at is None or sent_at is None or self.min_seconds_after_delivery <= 0:
            return False
        elapsed = (occurred_at - sent_at).total_seconds()
        return elapsed < self.min_seconds_after_delivery


def _pattern_search(patterns: tuple[str, ...]) -> Any:
    """One compiled alternation of the (lower-case) patterns: one scan per user agent."""
    if not patterns:
        return None
    return re.compile("|".join(re.escape(pattern) for pattern in patterns)).search


def _contains_pattern(user_agent: str, search: Any) -> bool:
    return search is not None and search(user_agent.lower()) is not None


def _in_networks(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in networks)
