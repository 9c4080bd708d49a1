"""The tracking history of a chunk's contacts: mails, opens, clicks, web visits and more.

The model, per contact:
- an *engagement* (log-normal: most people do little, a few a lot) that scales every rate;
- mail only where marketing mail is allowed (confirmed opt-in, or a customer who has not
  objected), from the weekly newsletter and from campaign journeys: random ones plus the
  ones an event starts (onboarding after a first order, e-book nurture after the download,
  fair follow-up after a fair scan);
- each mail is sent, then delivered or bounced; delivered mail may be opened (again) and
  clicked, by people a minute or more after delivery; privacy proxies and scanners open
  some mail within seconds and follow links, including the hidden honeypot link (all
  flagged `is_machine`, with a user agent the tracking rules recognise); a few people
  unsubscribe;
- web sessions of a few pages, downloads and form submissions, more of them recently;
  sessions before the person was known carry only the visitor id (attached later);
- fair visits, and one purchase event per order.
A scale factor on all engagement-driven rates is solved per chunk so that the chunk's
expected event count is its share of contacts × events_per_contact.

Events are produced per event type as a `Batch` of aligned columns and written straight to
COPY text; nothing outlives its chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from leadflow.demo import copytext as ct
from leadflow.demo import vocabulary as v
from leadflow.demo.commerce import Orders
from leadflow.demo.population import CONSENT, SOURCES, Accounts, Contacts
from leadflow.demo.timeline import Timeline

DAY = ct.SECONDS_PER_DAY
NULL = ct.NULL
EVENT_COLUMNS = (
    "event_id, contact_id, visitor_id, event_type, occurred_at, campaign_id, step_id, "
    "mailing_id, link_id, link_tag, asset_id, url, bounce_type, is_machine, user_agent, "
    "properties"
)

# Rates at engagement 1 over the full two years, before the per-chunk scale factor.
NEWSLETTER_RATE = 0.02  # probability of receiving (being sent) a given issue
NEWSLETTER_MAX = 0.9
JOURNEY_RATE = 0.4  # random journeys
SESSION_RATE = 1.0  # web sessions
DOWNLOAD_RATE = 0.15
FORM_RATE = 0.05
ANONYMOUS_SHARE = 0.03  # of the chunk's events: visitors never identified

BOUNCE_SHARE = 0.012
BOUNCE_SHARE_IMPORTED = 0.035  # purchased lists bounce more
HARD_BOUNCE_SHARE = 0.4
UNSUBSCRIBE_SHARE = 0.004  # of openers
OPEN_REPEAT = 0.6  # geometric parameter: opens per opener (mean 1 / 0.6)
CLICK_REPEAT = 0.7
PAGES_PER_SESSION = 0.45  # geometric parameter (mean 2.2 pages)
MACHINE_OPEN_SHARE = (0.04, 0.07)  # of all opens, drawn per chunk
MACHINE_CLICK_SHARE = 0.25  # of machine-opened mails, a scanner also follows a link
HONEYPOT_SHARE = 0.5  # of scanner clicks: the hidden honeypot link
RECENCY = 1.5  # ages ~ u ** RECENCY: activity grows towards as_of
PRE_IDENTIFICATION_DAYS = 30  # web/e-book contacts browsed anonymously before sign-up


def open_probability(engagement: np.ndarray) -> np.ndarray:
    return 0.85 * engagement / (engagement + 1.5)


def click_probability(engagement: np.ndarray) -> np.ndarray:
    return 0.5 * engagement / (engagement + 3.0)


# --- the mailing catalogue ------------------------------------------------------------------------


@dataclass(frozen=True)
class Mailings:
    """Every mailing of the tracking history, per language: newsletter issues and journey steps.

    A mailing code indexes `piece` (b"campaign\\tstep\\tmailing"), `links` (one pre-joined
    b"link_id\\tlink_tag" per link of the mailing) and `link_count`.
    """

    timeline: Timeline

    @cached_property
    def _catalogue(self) -> list[tuple[str, str, str, tuple[str, ...]]]:
        rows = []
        issue_days = self.timeline.newsletter_issues // DAY
        dates = [d.decode() for d in ct.dates(issue_days)]
        for language in v.LANGUAGES:
            for date in dates:
                rows.append(
                    (
                        v.NEWSLETTER_CAMPAIGN,
                        v.NEWSLETTER_STEP,
                        f"newsletter-{date}-{language}",
                        v.NEWSLETTER_LINK_TAGS,
                    )
                )
            for campaign in v.CAMPAIGNS:
                for step in campaign.steps:
                    rows.append(
                        (
                            campaign.campaign_id,
                            step,
                            f"{campaign.campaign_id}-{step}-{language}",
                            campaign.link_tags,
                        )
                    )
        return rows

    @property
    def issues(self) -> int:
        return self.timeline.newsletter_issues.size

    def newsletter_code(self, language: np.ndarray, issue: np.ndarray) -> np.ndarray:
        return language * self._per_language + issue

    def step_code(self, language: np.ndarray, campaign: np.ndarray, step: np.ndarray) -> np.ndarray:
        return language * self._per_language + self._campaign_base[campaign] + step

    @cached_property
    def _per_language(self) -> int:
        return self.issues + sum(len(c.steps) for c in v.CAMPAIGNS)

    @cached_property
    def _campaign_base(self) -> np.ndarray:
        offsets = np.cumsum([0] + [len(c.steps) for c in v.CAMPAIGNS])[:-1]
        return self.issues + offsets

    @cached_property
    def piece(self) -> np.ndarray:
        return np.array(
            [ct.joined(c.encode(), s.encode(), m.encode()) for c, s, m, _ in self._catalogue],
            dtype=object,
        )

    @cached_property
    def link_count(self) -> np.ndarray:
        """Visible links per mailing; the slot after them is the hidden honeypot link."""
        return np.array([len(tags) for *_, tags in self._catalogue])

    @cached_property
    def links(self) -> np.ndarray:
        width = max(len(tags) for *_, tags in self._catalogue) + 1
        table = np.full((len(self._catalogue), width), NULL, dtype=object)
        for code, (_, _, mailing, tags) in enumerate(self._catalogue):
            for slot, tag in enumerate((*tags, v.HONEYPOT_LINK_TAG)):
                table[code, slot] = ct.joined(f"{mailing}-{tag}".encode(), tag.encode())
        return table


CAMPAIGN_INDEX = {c.campaign_id: i for i, c in enumerate(v.CAMPAIGNS)}
CAMPAIGN_STEPS = np.array([len(c.steps) for c in v.CAMPAIGNS])
CAMPAIGN_GAP_DAYS = np.array([c.days_between_steps for c in v.CAMPAIGNS])
# Mean steps of the random journeys (three on average), less those cut off by as_of.
MAILS_PER_RANDOM_JOURNEY = 2.6
CUSTOMER_POOL = np.array([CAMPAIGN_INDEX[c] for c in v.CUSTOMER_CAMPAIGNS])
LEAD_POOL = np.array([CAMPAIGN_INDEX[c] for c in v.LEAD_CAMPAIGNS])


# --- lookup tables of encoded values --------------------------------------------------------------


def _weights(options) -> np.ndarray:
    weights = np.array([w for _, w in options], dtype=float)
    return weights / weights.sum()


class Tables:
    """Encoded strings for the event columns, built once."""

    browser = ct.encode_table(v.BROWSER_AGENTS)
    human_agent = np.array([ct.joined(b"f", a.encode()) for a in v.MAIL_CLIENT_AGENTS], object)
    machine_agent = np.array([ct.joined(b"t", a.encode()) for a in v.MACHINE_AGENTS], object)
    page_weights = _weights(v.WEB_PAGES["de"])
    urls = np.array(
        [
            [(v.WEBSITE[lang] + path).encode() for path, _ in v.WEB_PAGES[lang]]
            for lang in v.LANGUAGES
        ],
        dtype=object,
    )
    contact_urls = np.array(
        [(v.WEBSITE[lang] + v.CONTACT_PAGE[lang]).encode() for lang in v.LANGUAGES], dtype=object
    )
    assets = ct.encode_table(a for a, _ in v.ASSETS)
    asset_weights = _weights(v.ASSETS)
    forms = np.array([json.dumps({"form": f}).encode() for f, _ in v.FORMS], dtype=object)
    form_weights = _weights(v.FORMS)
    bounce = np.array([b"soft", b"hard"], dtype=object)


# --- batches --------------------------------------------------------------------------------------


@dataclass
class Batch:
    """Events of one type: aligned columns, plus how to lay them out as COPY rows."""

    contact: np.ndarray  # index into the chunk's contacts; -1 = not (yet) identified
    occurred: np.ndarray  # epoch seconds
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def keep(self, mask: np.ndarray) -> Batch:
        return Batch(
            self.contact[mask], self.occurred[mask], {k: c[mask] for k, c in self.columns.items()}
        )

    @property
    def size(self) -> int:
        return self.contact.size


@dataclass
class ChunkTracking:
    """All events of one chunk, ready to be numbered and written."""

    batches: list[tuple[str, Batch]]

    @property
    def size(self) -> int:
        return sum(b.size for _, b in self.batches)


@dataclass
class People:
    """What the tracking model needs to know per contact of the chunk."""

    language: np.ndarray
    customer: np.ndarray
    buyer: np.ndarray
    mail_allowed: np.ndarray
    mail_from: np.ndarray  # epoch second from which mail may be sent
    web_from: np.ndarray  # epoch second from which web activity is generated
    known_from: np.ndarray  # created_at: before it, web activity is anonymous
    engagement: np.ndarray
    imported: np.ndarray
    first_order: np.ndarray  # epoch second of the first order, -1 = none
    fair_day: np.ndarray  # epoch second of the fair scan that created them, -1 = none
    fair_name: list[str | None]
    ebook_signup: np.ndarray  # epoch second of the e-book form, -1 = none

    @property
    def size(self) -> int:
        return self.language.size


def people_of(
    contacts: Contacts, accounts: Accounts, first_order_day: np.ndarray, timeline: Timeline
) -> People:
    customer = accounts.customer[contacts.account]
    confirmed = contacts.consent == CONSENT.index("confirmed")
    objected = contacts.consent == CONSENT.index("objected")
    mail_allowed = confirmed | (customer & ~objected)
    consent_start = np.where(confirmed, contacts.consent_at, contacts.created)
    mail_from = np.maximum(consent_start, timeline.tracking_start)
    signed_up = np.isin(contacts.source_kind, (SOURCES.index("web"), SOURCES.index("ebook")))
    pre = np.where(signed_up, PRE_IDENTIFICATION_DAYS * DAY, 0)
    web_from = np.maximum(contacts.created - pre, timeline.tracking_start)
    first_order = np.where(contacts.buyer, first_order_day[contacts.account] * DAY + 9 * 3600, -1)
    in_window = contacts.created >= timeline.tracking_start
    is_fair = np.array([f is not None for f in contacts.fair_name], dtype=bool)
    ebook = contacts.source_kind == SOURCES.index("ebook")
    return People(
        language=contacts.language,
        customer=customer,
        buyer=contacts.buyer,
        mail_allowed=mail_allowed,
        mail_from=mail_from,
        web_from=web_from,
        known_from=contacts.created,
        engagement=contacts.engagement,
        imported=contacts.source_kind == SOURCES.index("import"),
        first_order=first_order,
        fair_day=np.where(is_fair & in_window, contacts.created, -1),
        fair_name=contacts.fair_name,
        ebook_signup=np.where(ebook & in_window, contacts.created, -1),
    )


# --- the model ------------------------------------------------------------------------------------


class TrackingModel:
    def __init__(
        self,
        people: People,
        orders: Orders,
        contact_of_order: np.ndarray,
        mailings: Mailings,
        timeline: Timeline,
        rng: np.random.Generator,
        budget: float,
    ) -> None:
        self.p = people
        self.orders = orders
        self.contact_of_order = contact_of_order
        self.mailings = mailings
        self.t = timeline
        self.rng = rng
        self.budget = budget
        self.cutoff = timeline.cutoff
        self.full = float(self.cutoff - timeline.tracking_start)

    # expected sizes, for the scale factor ---------------------------------------------------

    @cached_property
    def _events_per_mail(self) -> np.ndarray:
        opens = open_probability(self.p.engagement) / OPEN_REPEAT
        clicks = (
            open_probability(self.p.engagement)
            * click_probability(self.p.engagement)
            / CLICK_REPEAT
        )
        machine = np.mean(MACHINE_OPEN_SHARE) * opens * (1 + MACHINE_CLICK_SHARE)
        return 2.0 + opens + clicks + machine

    @cached_property
    def _mail_fraction(self) -> np.ndarray:
        return np.clip((self.cutoff - self.p.mail_from) / self.full, 0, 1) * self.p.mail_allowed

    @cached_property
    def _web_fraction(self) -> np.ndarray:
        return np.clip((self.cutoff - self.p.web_from) / self.full, 0, 1)

    @cached_property
    def _issues_open(self) -> np.ndarray:
        """Newsletter issues each contact may receive (sent after mail was allowed)."""
        issues = self.t.newsletter_issues
        count = issues.size - np.searchsorted(issues, self.p.mail_from, side="left")
        return count * self.p.mail_allowed

    def _expected(self, scale: float) -> float:
        e = self.p.engagement
        newsletter = self._issues_open * np.minimum(NEWSLETTER_MAX, scale * e * NEWSLETTER_RATE)
        journeys = scale * e * self._mail_fraction * JOURNEY_RATE * MAILS_PER_RANDOM_JOURNEY
        mail = (newsletter + journeys) * self._events_per_mail
        web = (
            scale
            * e
            * self._web_fraction
            * (SESSION_RATE / PAGES_PER_SESSION + DOWNLOAD_RATE + FORM_RATE)
        )
        return float((mail + web).sum())

    def _fixed(self) -> float:
        """Events not driven by the scale: purchases, triggered journeys, sign-ups, fairs."""
        triggered = (
            (self.p.first_order >= self.t.tracking_start).sum() * _steps("onboarding")
            + (self.p.fair_day >= 0).sum() * _steps("fair_followup")
            + (self.p.ebook_signup >= 0).sum() * _steps("ebook_nurture")
        )
        mails = triggered * float(self._events_per_mail.mean()) if self.p.size else 0.0
        return (
            self.orders.number.size
            + mails
            + 2 * (self.p.ebook_signup >= 0).sum()
            + (self.p.fair_day >= 0).sum()
        )

    def scale(self) -> float:
        target = self.budget * (1 - ANONYMOUS_SHARE) - self._fixed()
        if target <= 0 or self._expected(1.0) == 0:
            return 0.0
        low, high = 0.0, 1.0
        while self._expected(high) < target and high < 1e6:
            high *= 2
        for _ in range(40):
            middle = (low + high) / 2
            low, high = (middle, high) if self._expected(middle) < target else (low, middle)
        return (low + high) / 2

    # generation ----------------------------------------------------------------------------

    def events(self) -> ChunkTracking:
        scale = self.scale()
        mails = self._mails(scale)
        batches = [
            *self._mail_events(mails),
            *self._web(scale),
            ("download", self._downloads(scale)),
            ("form_submit", self._forms(scale)),
            *self._signups(),
            ("fair_visit", self._fair_visits()),
            ("purchase", self._purchases()),
        ]
        kept = [
            (kind, b.keep((b.occurred < self.cutoff) & (b.occurred >= 0))) for kind, b in batches
        ]
        return ChunkTracking([(kind, b) for kind, b in kept if b.size])

    def _recent(self, start: np.ndarray) -> np.ndarray:
        """Instants in [start, cutoff), denser towards the cut-off."""
        age = (self.cutoff - start) * self.rng.random(start.size) ** RECENCY
        day = (self.cutoff - 1 - age.astype(np.int64)) // DAY
        # People browse in office hours (about 07:00-18:00 in Central Europe).
        time_of_day = np.clip(self.rng.normal(10.5 * 3600, 3 * 3600, start.size), 0, DAY - 1)
        at = day * DAY + time_of_day.astype(np.int64)
        return np.clip(at, start, self.cutoff - 1)

    def _mails(self, scale: float) -> Batch:
        """Every mail sent: contact, mailing code and send instant."""
        parts = [self._newsletters(scale), self._random_journeys(scale), self._triggered_journeys()]
        contact = np.concatenate([p[0] for p in parts])
        code = np.concatenate([p[1] for p in parts])
        sent = np.concatenate([p[2] for p in parts])
        return Batch(contact, sent, {"mailing": code})

    def _newsletters(self, scale: float):
        issues = self.t.newsletter_issues
        p = (
            np.minimum(NEWSLETTER_MAX, scale * self.p.engagement * NEWSLETTER_RATE)
            * self.p.mail_allowed
        )
        contacts, issue = [], []
        block = 20_000  # bounded memory for the contact × issue draw
        for first in range(0, self.p.size, block):
            rows = slice(first, first + block)
            draw = self.rng.random((p[rows].size, issues.size), dtype=np.float32)
            hit = (draw < p[rows, None]) & (issues[None, :] >= self.p.mail_from[rows, None])
            c, i = np.nonzero(hit)
            contacts.append(c + first)
            issue.append(i)
        contact = np.concatenate(contacts) if contacts else np.empty(0, np.int64)
        issue = np.concatenate(issue) if issue else np.empty(0, np.int64)
        code = self.mailings.newsletter_code(self.p.language[contact], issue)
        # Sending a newsletter to everyone takes the better part of an hour.
        sent = issues[issue] + self.rng.integers(0, 2400, contact.size)
        return contact, code, sent

    def _random_journeys(self, scale: float):
        rate = scale * self.p.engagement * self._mail_fraction * JOURNEY_RATE
        count = self.rng.poisson(rate)
        contact = np.repeat(np.arange(self.p.size), count)
        pool_pick = self.rng.random(contact.size)
        campaign = np.where(
            self.p.customer[contact],
            CUSTOMER_POOL[(pool_pick * CUSTOMER_POOL.size).astype(np.int64)],
            LEAD_POOL[(pool_pick * LEAD_POOL.size).astype(np.int64)],
        )
        start_from = self.p.mail_from[contact]
        start = start_from + (self.rng.random(contact.size) * (self.cutoff - start_from)).astype(
            np.int64
        )
        return self._journey_steps(contact, campaign, start)

    def _triggered_journeys(self):
        starts = [
            ("onboarding", self.p.first_order, 1),
            ("fair_followup", self.p.fair_day, 3),
            ("ebook_nurture", self.p.ebook_signup, 1),
        ]
        contacts, campaigns, times = [], [], []
        for campaign, trigger, days_later in starts:
            start = trigger + days_later * DAY
            chosen = np.flatnonzero(
                (trigger >= 0) & self.p.mail_allowed & (start >= self.p.mail_from)
            )
            contacts.append(chosen)
            campaigns.append(np.full(chosen.size, CAMPAIGN_INDEX[campaign]))
            times.append(start[chosen] // DAY * DAY + 9 * 3600)
        return self._journey_steps(
            np.concatenate(contacts), np.concatenate(campaigns), np.concatenate(times)
        )

    def _journey_steps(self, contact, campaign, start):
        steps = CAMPAIGN_STEPS[campaign]
        row = np.repeat(np.arange(contact.size), steps)
        step = _within_group(steps)
        sent = start[row] + step * CAMPAIGN_GAP_DAYS[campaign[row]] * DAY
        sent += self.rng.integers(0, 3600, row.size)
        code = self.mailings.step_code(self.p.language[contact[row]], campaign[row], step)
        return contact[row], code, sent

    def _mail_events(self, mails: Batch) -> Iterator[tuple[str, Batch]]:
        rng, n = self.rng, mails.size
        contact, code, sent = mails.contact, mails.columns["mailing"], mails.occurred
        yield "email_sent", mails
        bounce_share = np.where(self.p.imported[contact], BOUNCE_SHARE_IMPORTED, BOUNCE_SHARE)
        bounced = rng.random(n) < bounce_share
        hard = rng.random(n) < HARD_BOUNCE_SHARE
        yield (
            "email_bounced",
            Batch(
                contact[bounced],
                sent[bounced] + rng.integers(5, 900, bounced.sum()),
                {"mailing": code[bounced], "bounce": hard[bounced].astype(np.int64)},
            ),
        )
        delivered = ~bounced
        delivered_at = sent + rng.integers(1, 90, n)
        yield (
            "email_delivered",
            Batch(contact[delivered], delivered_at[delivered], {"mailing": code[delivered]}),
        )
        yield from self._opens_and_clicks(contact, code, delivered, delivered_at)

    def _opens_and_clicks(self, contact, code, delivered, delivered_at):
        rng = self.rng
        engagement = self.p.engagement[contact]
        opener = delivered & (rng.random(contact.size) < open_probability(engagement))
        mail = np.flatnonzero(opener)
        delay = np.clip(
            rng.lognormal(np.log(3 * 3600), 1.5, mail.size), v.HUMAN_MIN_DELAY_SECONDS, 20 * DAY
        )
        first_open = delivered_at[mail] + delay.astype(np.int64)
        opens = rng.geometric(OPEN_REPEAT, mail.size)
        row = np.repeat(np.arange(mail.size), opens)
        later = rng.lognormal(np.log(DAY), 1.0, row.size).astype(np.int64)
        later[np.cumsum(opens) - opens] = 0
        opened_at = first_open[row] + _group_cumsum(later, opens)
        human_opens = row.size
        yield (
            "email_open",
            Batch(
                contact[mail[row]],
                opened_at,
                {
                    "mailing": code[mail[row]],
                    "agent": rng.integers(0, len(Tables.human_agent), row.size),
                    "machine": np.zeros(row.size, dtype=np.int64),
                },
            ),
        )
        clicker = rng.random(mail.size) < click_probability(engagement[mail])
        click_mail = np.flatnonzero(clicker)
        clicks = rng.geometric(CLICK_REPEAT, click_mail.size)
        click_row = np.repeat(click_mail, clicks)
        gaps = rng.integers(10, 600, click_row.size)
        gaps[np.cumsum(clicks) - clicks] = 0
        clicked_at = (
            first_open[click_row]
            + np.repeat(rng.lognormal(np.log(60), 1.0, click_mail.size).astype(np.int64), clicks)
            + _group_cumsum(gaps, clicks)
        )
        yield (
            "email_click",
            self._clicks(
                contact[mail[click_row]], code[mail[click_row]], clicked_at, machine=False
            ),
        )
        unsubscribed = rng.random(mail.size) < UNSUBSCRIBE_SHARE
        yield (
            "unsubscribe",
            Batch(
                contact[mail[unsubscribed]],
                first_open[unsubscribed] + rng.integers(20, 900, unsubscribed.sum()),
                {"mailing": code[mail[unsubscribed]]},
            ),
        )
        yield from self._machine_traffic(contact, code, delivered, delivered_at, human_opens)

    def _machine_traffic(self, contact, code, delivered, delivered_at, human_opens):
        """Proxies and scanners: an open (and sometimes a click) seconds after delivery."""
        rng = self.rng
        share = rng.uniform(*MACHINE_OPEN_SHARE)
        delivered_count = max(int(delivered.sum()), 1)
        p = min(1.0, share / (1 - share) * human_opens / delivered_count)
        scanned = np.flatnonzero(delivered & (rng.random(contact.size) < p))
        agent = rng.integers(0, len(Tables.machine_agent), scanned.size)
        yield (
            "email_open",
            Batch(
                contact[scanned],
                delivered_at[scanned] + rng.integers(*v.MACHINE_DELAY_SECONDS, scanned.size),
                {
                    "mailing": code[scanned],
                    "agent": agent,
                    "machine": np.ones(scanned.size, dtype=np.int64),
                },
            ),
        )
        followed = rng.random(scanned.size) < MACHINE_CLICK_SHARE
        batch = self._clicks(
            contact[scanned[followed]],
            code[scanned[followed]],
            delivered_at[scanned[followed]]
            + rng.integers(*v.MACHINE_DELAY_SECONDS, followed.sum()),
            machine=True,
        )
        batch.columns["agent"] = agent[followed]
        yield "email_click", batch

    def _clicks(self, contact, code, at, machine: bool) -> Batch:
        """Clicks on a visible link of the mail; scanners also follow the hidden honeypot."""
        visible = self.mailings.link_count[code]
        slot = (self.rng.random(contact.size) * visible).astype(np.int64)
        if machine:
            slot = np.where(self.rng.random(contact.size) < HONEYPOT_SHARE, visible, slot)
        agents = Tables.machine_agent if machine else Tables.human_agent
        return Batch(
            contact,
            at,
            {
                "mailing": code,
                "link_slot": slot,
                "agent": self.rng.integers(0, len(agents), contact.size),
                "machine": np.full(contact.size, int(machine), dtype=np.int64),
            },
        )

    def _web(self, scale: float) -> Iterator[tuple[str, Batch]]:
        rng = self.rng
        rate = scale * self.p.engagement * self._web_fraction * SESSION_RATE
        sessions = rng.poisson(rate)
        contact = np.repeat(np.arange(self.p.size), sessions)
        start = self._recent(self.p.web_from[contact])
        yield "web_visit", self._pages(contact, start, self.p.language[contact])[0]
        anonymous = round(self.budget * ANONYMOUS_SHARE * PAGES_PER_SESSION)
        language = rng.choice(len(v.LANGUAGES), size=anonymous, p=_language_weights())
        start = self._recent(np.full(anonymous, self.t.tracking_start))
        batch, pages = self._pages(np.full(anonymous, -1), start, language)
        batch.columns["visitor"] = np.repeat(rng.integers(0, 1 << 62, anonymous), pages)
        yield "web_visit", batch

    def _pages(self, contact, start, language) -> tuple[Batch, np.ndarray]:
        """Sessions of a few pages each; returns the page views and pages per session."""
        rng = self.rng
        pages = rng.geometric(PAGES_PER_SESSION, contact.size)
        row = np.repeat(np.arange(contact.size), pages)
        gaps = rng.integers(15, 240, row.size)
        gaps[np.cumsum(pages) - pages] = 0
        at = start[row] + _group_cumsum(gaps, pages)
        owner = contact[row]
        page = rng.choice(Tables.page_weights.size, size=row.size, p=Tables.page_weights)
        known = (owner >= 0) & (at >= self.p.known_from[np.maximum(owner, 0)])
        batch = Batch(
            np.where(known, owner, -1),
            at,
            {
                "visitor_of": owner,
                "language": language[row],
                "page": page,
            },
        )
        return batch, pages

    def _downloads(self, scale: float) -> Batch:
        count = self.rng.poisson(scale * self.p.engagement * self._web_fraction * DOWNLOAD_RATE)
        contact = np.repeat(np.arange(self.p.size), count)
        at = self._recent(np.maximum(self.p.web_from, self.p.known_from)[contact])
        asset = self.rng.choice(
            Tables.asset_weights.size, size=contact.size, p=Tables.asset_weights
        )
        return Batch(contact, at, {"asset": asset})

    def _forms(self, scale: float) -> Batch:
        count = self.rng.poisson(scale * self.p.engagement * self._web_fraction * FORM_RATE)
        contact = np.repeat(np.arange(self.p.size), count)
        at = self._recent(np.maximum(self.p.web_from, self.p.known_from)[contact])
        form = self.rng.choice(Tables.form_weights.size, size=contact.size, p=Tables.form_weights)
        return Batch(contact, at, {"form": form})

    def _signups(self) -> Iterator[tuple[str, Batch]]:
        """The e-book form that created a contact, and the download it unlocked."""
        contact = np.flatnonzero(self.p.ebook_signup >= 0)
        at = self.p.ebook_signup[contact]
        yield "form_submit", Batch(contact, at, {"form": np.full(contact.size, -1)})
        ebook = [a for a, _ in v.ASSETS].index(v.EBOOK_ASSET)
        yield (
            "download",
            Batch(
                contact,
                at + self.rng.integers(5, 120, contact.size),
                {"asset": np.full(contact.size, ebook)},
            ),
        )

    def _fair_visits(self) -> Batch:
        contact = np.flatnonzero(self.p.fair_day >= 0)
        names = np.array(
            [json.dumps({"fair": self.p.fair_name[c]}).encode() for c in contact.tolist()],
            dtype=object,
        )
        return Batch(contact, self.p.fair_day[contact], {"properties": names})

    def _purchases(self) -> Batch:
        o = self.orders
        properties = np.array(
            [
                b'{"order_id": "%s", "net_amount": %d.%02d, "status": "%s"}'
                % (order_id, *divmod(net, 100), b"cancelled" if cancelled else b"won")
                for order_id, net, cancelled in zip(
                    o.ids, o.net_cents.tolist(), o.cancelled.tolist(), strict=True
                )
            ],
            dtype=object,
        )
        return Batch(self.contact_of_order, o.ordered_at, {"properties": properties})


def _steps(campaign: str) -> int:
    return int(CAMPAIGN_STEPS[CAMPAIGN_INDEX[campaign]])


def _language_weights() -> np.ndarray:
    per_language = np.zeros(len(v.LANGUAGES))
    for country, weight in zip(v.COUNTRIES, v.COUNTRY_WEIGHTS, strict=True):
        per_language[v.LANGUAGES.index(v.LANGUAGE_OF_COUNTRY[country])] += weight
    return per_language / per_language.sum()


def _within_group(counts: np.ndarray) -> np.ndarray:
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(int(counts.sum())) - starts


def _group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Running sum of `values` restarting at each group of `counts` rows."""
    total = np.cumsum(values)
    group_start = np.cumsum(counts) - counts
    before = np.where(group_start > 0, total[np.maximum(group_start - 1, 0)], 0)
    return total - np.repeat(before, counts)


# --- COPY rows ------------------------------------------------------------------------------------

_N = NULL


def _tail(*pieces: bytes) -> bytes:
    return ct.joined(*pieces)


class Writer:
    """Lays out a chunk's batches as COPY rows, numbering events as it goes."""

    def __init__(
        self,
        seed: int,
        contact_ids: list[bytes],
        visitor_seed: np.ndarray,
        language: np.ndarray,
        mailings: Mailings,
    ) -> None:
        self.prefix = f"g-{seed}-"
        self.contact_ids = np.array([*contact_ids, NULL], dtype=object)  # -1 → NULL
        self.visitors = np.array(
            [b"v-%016x" % s for s in visitor_seed.tolist()] + [NULL], dtype=object
        )
        self.contact_browser = Tables.browser[visitor_seed % len(Tables.browser)]
        self.language = language
        self.mailings = mailings

    def rows(self, kind: str, batch: Batch, first_number: int) -> bytes:
        ids = ct.padded_ids(self.prefix, first_number + np.arange(batch.size), 10)
        contact = self.contact_ids[batch.contact].tolist()
        at = ct.timestamps(batch.occurred)
        c = batch.columns
        layout = getattr(self, f"_{kind}")
        return ct.rows([ids, contact, *layout(batch, c, at)])

    def _mail(self, c) -> list[bytes]:
        return self.mailings.piece[c["mailing"]].tolist()

    def _email_sent(self, batch, c, at):
        return [
            ct.joined(_N, b"email_sent"),
            at,
            self._mail(c),
            _tail(_N, _N, _N, _N, _N, b"f", _N, _N),
        ]

    def _email_delivered(self, batch, c, at):
        return [
            ct.joined(_N, b"email_delivered"),
            at,
            self._mail(c),
            _tail(_N, _N, _N, _N, _N, b"f", _N, _N),
        ]

    def _unsubscribe(self, batch, c, at):
        return [
            ct.joined(_N, b"unsubscribe"),
            at,
            self._mail(c),
            _tail(_N, _N, _N, _N, _N, b"f", _N, _N),
        ]

    def _email_bounced(self, batch, c, at):
        return [
            ct.joined(_N, b"email_bounced"),
            at,
            self._mail(c),
            _tail(_N, _N, _N, _N),
            Tables.bounce[c["bounce"]].tolist(),
            _tail(b"f", _N, _N),
        ]

    def _agents(self, c) -> list[bytes]:
        machine = c["machine"].astype(bool)
        agents = np.where(
            machine,
            Tables.machine_agent[c["agent"] % len(Tables.machine_agent)],
            Tables.human_agent[c["agent"] % len(Tables.human_agent)],
        )
        return agents.tolist()

    def _email_open(self, batch, c, at):
        return [
            ct.joined(_N, b"email_open"),
            at,
            self._mail(c),
            _tail(_N, _N, _N, _N, _N),
            self._agents(c),
            _N,
        ]

    def _email_click(self, batch, c, at):
        links = self.mailings.links[c["mailing"], c["link_slot"]].tolist()
        return [
            ct.joined(_N, b"email_click"),
            at,
            self._mail(c),
            links,
            _tail(_N, _N, _N),
            self._agents(c),
            _N,
        ]

    def _visitor(self, batch, c) -> list[bytes]:
        if "visitor" in c:
            return [b"v-%016x" % s for s in c["visitor"].tolist()]
        return self.visitors[c.get("visitor_of", batch.contact)].tolist()

    def _browser(self, batch, c) -> list[bytes]:
        owner = c.get("visitor_of", batch.contact)
        agents = self.contact_browser[np.maximum(owner, 0)]
        if "visitor" in c:
            agents = Tables.browser[c["visitor"] % len(Tables.browser)]
        return agents.tolist()

    def _web_visit(self, batch, c, at):
        urls = Tables.urls[c["language"], c["page"]].tolist()
        return [
            self._visitor(batch, c),
            b"web_visit",
            at,
            _tail(_N, _N, _N, _N, _N, _N),
            urls,
            _tail(_N, b"f"),
            self._browser(batch, c),
            _N,
        ]

    def _download(self, batch, c, at):
        return [
            self._visitor(batch, c),
            b"download",
            at,
            _tail(_N, _N, _N, _N, _N),
            Tables.assets[c["asset"]].tolist(),
            _tail(_N, _N, b"f"),
            self._browser(batch, c),
            _N,
        ]

    def _form_submit(self, batch, c, at):
        ebook = json.dumps({"form": "ebook"}).encode()
        forms = np.array([*Tables.forms, ebook], dtype=object)[c["form"]].tolist()
        urls = Tables.contact_urls[self.language[batch.contact]].tolist()
        return [
            self._visitor(batch, c),
            b"form_submit",
            at,
            _tail(_N, _N, _N, _N, _N, _N),
            urls,
            _tail(_N, b"f"),
            self._browser(batch, c),
            forms,
        ]

    def _fair_visit(self, batch, c, at):
        return [
            ct.joined(_N, b"fair_visit"),
            at,
            _tail(*[_N] * 8, b"f", _N),
            c["properties"].tolist(),
        ]

    def _purchase(self, batch, c, at):
        return [
            ct.joined(_N, b"purchase"),
            at,
            _tail(*[_N] * 8, b"f", _N),
            c["properties"].tolist(),
        ]
