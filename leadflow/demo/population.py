"""Accounts (companies) and contacts (people) of the example company's market.

The population is drawn in two stages. The *skeleton* fixes, for every account, the few
facts that decide how work is split into chunks and who buys: country, industry, size,
number of contacts, customer or not. It is small (one row per four contacts) and drawn
once. Each chunk of accounts then gets its details — names, regions, people, emails,
consent — from its own random stream, so memory stays bounded however large the company.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np

from leadflow.demo import copytext as ct
from leadflow.demo import vocabulary as v
from leadflow.demo.timeline import Timeline

CONTACTS_PER_ACCOUNT = 4
EMPLOYEES_MEDIAN, EMPLOYEES_SIGMA, EMPLOYEES_RANGE = 150, 1.05, (10, 5000)
# Share of customer accounts ~39 %; larger companies buy more often.
CUSTOMER_LOGIT = (-0.45, 0.45)
UPSELL_SHARE = 0.04  # customers whose HydroStat 2000 is placed in the up-sell segment
OWNED_SHARE = {True: 0.92, False: 0.25}  # accounts with a sales rep: customers, leads

SOURCES = ("crm", "web", "ebook", "fair", "import")
SOURCE_WEIGHTS_BUYER = (0.6, 0.1, 0.05, 0.15, 0.1)
SOURCE_WEIGHTS_OTHER = (0.2, 0.25, 0.2, 0.2, 0.15)
CONSENT = ("confirmed", "pending", "none", "objected")
CONSENT_WEIGHTS = (0.74, 0.08, 0.15, 0.03)
LIFECYCLE = (None, "sql", "opportunity", "customer")
SALUTATIONS = ("mr", "ms")
SHARE_MS = 0.3


@dataclass(frozen=True)
class Skeleton:
    """Per account: the facts fixed before chunking (index = account number - 1)."""

    country: np.ndarray  # index into COUNTRIES
    industry: np.ndarray  # index into INDUSTRIES
    employees: np.ndarray
    contacts: np.ndarray  # contacts per account, ≥ 1, summing to the contact count
    customer: np.ndarray  # bool
    upsell: np.ndarray  # bool: a customer placed in the up-sell segment on purpose

    @property
    def size(self) -> int:
        return self.country.size

    @property
    def first_contact(self) -> np.ndarray:
        """Global index (0-based) of each account's first contact."""
        return np.concatenate(([0], np.cumsum(self.contacts)[:-1]))

    def chunks(self, contacts_per_chunk: int) -> list[slice]:
        """Account ranges holding about `contacts_per_chunk` contacts each."""
        ends = np.cumsum(self.contacts)
        bounds = [0]
        target = contacts_per_chunk
        while bounds[-1] < self.size:
            # Close the chunk at the first account whose contacts reach the target.
            stop = int(np.searchsorted(ends, target, side="left")) + 1
            stop = max(stop, bounds[-1] + 1)
            bounds.append(min(stop, self.size))
            target = int(ends[bounds[-1] - 1]) + contacts_per_chunk
        return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def draw_skeleton(contacts: int, rng: np.random.Generator) -> Skeleton:
    accounts = max(1, round(contacts / CONTACTS_PER_ACCOUNT))
    country = rng.choice(len(v.COUNTRIES), size=accounts, p=v.COUNTRY_WEIGHTS)
    industry = rng.choice(len(v.INDUSTRIES), size=accounts, p=v.INDUSTRY_WEIGHTS)
    employees = np.clip(
        np.rint(rng.lognormal(np.log(EMPLOYEES_MEDIAN), EMPLOYEES_SIGMA, accounts)),
        *EMPLOYEES_RANGE,
    ).astype(np.int64)
    # Every account has one contact; larger companies have more of the rest.
    weights = employees**0.6
    extra = rng.multinomial(max(contacts - accounts, 0), weights / weights.sum())
    per_account = 1 + extra
    a, b = CUSTOMER_LOGIT
    p_customer = 1 / (1 + np.exp(-(a + b * np.log(employees / EMPLOYEES_MEDIAN))))
    customer = rng.random(accounts) < p_customer
    upsell = customer & (rng.random(accounts) < UPSELL_SHARE)
    # The first account is always an up-sell customer, so the segment exists at any size.
    customer[0] = upsell[0] = True
    return Skeleton(country, industry, employees, per_account, customer, upsell)


# --- names and addresses --------------------------------------------------------------------------

_GERMAN_LETTERS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


@cache
def ascii_slug(text: str, separator: str = "") -> str:
    """Lower-case ASCII for addresses: umlauts spelt out, accents dropped, rest removed."""
    lowered = text.lower().replace("&", " ").replace("+", " ").translate(_GERMAN_LETTERS)
    plain = unicodedata.normalize("NFKD", lowered).encode("ascii", "ignore").decode()
    words = ["".join(ch for ch in word if ch.isalnum()) for word in plain.split()]
    return separator.join(word for word in words if word)


class DomainRegistry:
    """Hands out unique company domains; a second 'Huber Metallbau' gets huber-metallbau-2."""

    def __init__(self) -> None:
        self._used: dict[str, int] = {}

    def claim(self, company_core: str, country: str) -> str:
        slug = ascii_slug(company_core, "-") or "firma"
        key = f"{slug}.{country}"
        count = self._used.get(key, 0) + 1
        self._used[key] = count
        name = slug if count == 1 else f"{slug}-{count}"
        return f"{name}.{v.COMPANY_TLD[country]}.{v.RESERVED_SUFFIX}"


def _choose(rng: np.random.Generator, options: tuple[tuple[str, float], ...], n: int) -> list[str]:
    """n picks from (value, weight) options."""
    weights = np.array([w for _, w in options])
    picks = rng.choice(len(options), size=n, p=weights / weights.sum())
    return [options[i][0] for i in picks.tolist()]


def company_names(
    country: str, industries: np.ndarray, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Plausible company names of one country: (with legal form, without it)."""
    n = industries.size
    surnames = v.LAST_NAMES[country]
    words = v.INDUSTRY_WORDS[v.LANGUAGE_OF_COUNTRY[country]]
    patterns = _choose(rng, v.NAME_PATTERNS[country], n)
    legal = _choose(rng, v.LEGAL_FORMS[country], n)
    first = rng.integers(0, len(surnames), n)
    # A different second surname: shift by 1 .. len-1.
    second = (first + rng.integers(1, len(surnames), n)) % len(surnames)
    word_pick = rng.integers(0, 1 << 30, n)
    full, cores = [], []
    for i in range(n):
        industry_words = words[v.INDUSTRIES[industries[i]]]
        core = patterns[i].format(
            s=surnames[first[i]],
            s2=surnames[second[i]],
            w=industry_words[word_pick[i] % len(industry_words)],
        )
        cores.append(core)
        full.append(f"{core} {legal[i]}")
    return full, cores


def email_local_part(pattern: str, first: str, last: str) -> str:
    first_ascii, last_ascii = ascii_slug(first), ascii_slug(last)
    return pattern.format(first=first_ascii, f=first_ascii[:1], last=last_ascii)


def regions_and_postcodes(
    country: str, n: int, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Regions by their weight, and a postcode of the country's shape within each region."""
    regions = v.REGIONS[country]
    weights = np.array([r.weight for r in regions])
    region = rng.choice(len(regions), size=n, p=weights / weights.sum())
    prefix_pick = rng.integers(0, 1 << 30, n)
    rest = rng.integers(0, 10 ** v.POSTCODE_LENGTH[country], n)
    names, postcodes = [], []
    for i in range(n):
        r = regions[region[i]]
        prefix = r.postcode_prefixes[prefix_pick[i] % len(r.postcode_prefixes)]
        width = v.POSTCODE_LENGTH[country] - len(prefix)
        names.append(r.name)
        postcodes.append(prefix + str(rest[i] % 10**width).zfill(width) if width else prefix)
    return names, postcodes


# --- chunk of accounts ----------------------------------------------------------------------------


@dataclass
class Accounts:
    """The accounts of one chunk; arrays are aligned (index = position in the chunk)."""

    number: np.ndarray  # 1-based account number
    country: np.ndarray
    industry: np.ndarray
    employees: np.ndarray
    revenue: np.ndarray  # EUR
    customer: np.ndarray
    upsell: np.ndarray
    contacts: np.ndarray
    first_contact: np.ndarray  # global 0-based contact index of the first contact
    name: list[str]
    domain: list[str]
    region: list[str]
    postcode: list[str]
    owner: list[str | None]
    email_pattern: np.ndarray
    created: np.ndarray  # epoch seconds, filled once contacts exist
    updated: np.ndarray

    @property
    def size(self) -> int:
        return self.number.size

    @property
    def ids(self) -> list[bytes]:
        return account_ids(self.number)


def account_ids(numbers: np.ndarray) -> list[bytes]:
    return ct.padded_ids("ACC-", numbers, 7)


def contact_ids(numbers: np.ndarray) -> list[bytes]:
    return ct.padded_ids("CON-", numbers, 8)


def draw_accounts(
    skeleton: Skeleton,
    span: slice,
    rng: np.random.Generator,
    domains: DomainRegistry,
) -> Accounts:
    number = np.arange(span.start, span.stop, dtype=np.int64) + 1
    n = number.size
    country = skeleton.country[span]
    industry = skeleton.industry[span]
    employees = skeleton.employees[span]
    customer = skeleton.customer[span]
    names: list[str] = [""] * n
    cores: list[str] = [""] * n
    regions: list[str] = [""] * n
    postcodes: list[str] = [""] * n
    revenue_noise = rng.lognormal(0.0, 0.3, n)
    owned = rng.random(n) < np.where(customer, OWNED_SHARE[True], OWNED_SHARE[False])
    owner_pick = rng.integers(0, 1 << 30, n)
    for c, code in enumerate(v.COUNTRIES):
        rows = np.flatnonzero(country == c)
        full, core = company_names(code, industry[rows], rng)
        region, post = regions_and_postcodes(code, rows.size, rng)
        for j, row in enumerate(rows.tolist()):
            names[row], cores[row], regions[row], postcodes[row] = (
                full[j],
                core[j],
                region[j],
                post[j],
            )
    codes = [v.COUNTRIES[c] for c in country.tolist()]
    # Domains are claimed in account order, so they do not depend on the grouping above.
    domain_names = [domains.claim(core, code) for core, code in zip(cores, codes, strict=True)]
    owners = [
        sales_rep(code, postcode, v.INDUSTRIES[industry_code], size, pick) if is_owned else None
        for code, postcode, industry_code, size, pick, is_owned in zip(
            codes,
            postcodes,
            industry.tolist(),
            employees.tolist(),
            owner_pick.tolist(),
            owned.tolist(),
            strict=True,
        )
    ]
    per_employee = np.array([v.REVENUE_PER_EMPLOYEE[v.INDUSTRIES[i]] for i in industry])
    revenue = np.rint(employees * per_employee * revenue_noise / 1000).astype(np.int64) * 1000
    patterns = rng.choice(len(v.EMAIL_PATTERNS), size=n, p=np.array(v.EMAIL_PATTERN_WEIGHTS))
    return Accounts(
        number=number,
        country=country,
        industry=industry,
        employees=employees,
        revenue=revenue,
        customer=customer,
        upsell=skeleton.upsell[span],
        contacts=skeleton.contacts[span],
        first_contact=skeleton.first_contact[span],
        name=names,
        domain=domain_names,
        region=regions,
        postcode=postcodes,
        owner=owners,
        email_pattern=patterns,
        created=np.zeros(n, dtype=np.int64),
        updated=np.zeros(n, dtype=np.int64),
    )


def sales_team(country: str, postcode: str, industry: str, employees: int) -> str:
    """The team whose territory an account is in, by the rules of routing.yaml."""
    dach = country in ("DE", "AT", "CH")
    if dach and industry == "machine_tools" and employees > v.KEY_ACCOUNT_MIN_EMPLOYEES:
        return "key_accounts"
    if country == "DE":
        return "dach_north" if postcode[:1] in "01234" else "dach_south"
    return v.TEAM_OF_COUNTRY[country]


def sales_rep(country: str, postcode: str, industry: str, employees: int, pick: int) -> str:
    members = v.SALES_TEAMS[sales_team(country, postcode, industry, employees)]
    return members[pick % len(members)]


# --- chunk of contacts ----------------------------------------------------------------------------


@dataclass
class Contacts:
    """The contacts of one chunk, grouped by account in account order."""

    number: np.ndarray  # 1-based contact number
    account: np.ndarray  # index into the chunk's Accounts
    buyer: np.ndarray  # bool: places the orders of a customer account
    country: np.ndarray
    language: np.ndarray  # index into LANGUAGES
    role: np.ndarray  # index into DECISION_ROLES
    salutation: np.ndarray  # 0 mr, 1 ms
    first_name: list[str]
    last_name: list[str]
    position: list[str]
    email: list[str]
    source: list[str]  # crm, web, ebook, import or fair:<name>
    source_kind: np.ndarray  # index into SOURCES
    fair_name: list[str | None]
    created: np.ndarray  # epoch seconds
    updated: np.ndarray
    consent: np.ndarray  # index into CONSENT
    consent_at: np.ndarray  # epoch seconds, -1 = none
    lifecycle: np.ndarray  # index into LIFECYCLE
    tags: np.ndarray  # bit mask over TAGS
    interests: np.ndarray  # bit mask over INTERESTS
    engagement: np.ndarray  # how active the person is online (tracking)

    @property
    def size(self) -> int:
        return self.number.size

    @property
    def ids(self) -> list[bytes]:
        return contact_ids(self.number)


def draw_contacts(
    accounts: Accounts,
    first_order_day: np.ndarray,
    timeline: Timeline,
    rng: np.random.Generator,
) -> Contacts:
    """The people of a chunk's accounts; `first_order_day` per account (-1 = never bought)."""
    account = np.repeat(np.arange(accounts.size), accounts.contacts)
    n = account.size
    number = (accounts.first_contact[0] + 1 + np.arange(n)).astype(np.int64)
    starts = np.repeat(np.cumsum(accounts.contacts) - accounts.contacts, accounts.contacts)
    buyer = (np.arange(n) == starts) & accounts.customer[account]
    country = accounts.country[account]
    language = np.array([v.LANGUAGES.index(v.LANGUAGE_OF_COUNTRY[c]) for c in v.COUNTRIES])[country]
    role = np.where(
        buyer,
        rng.choice(4, size=n, p=v.BUYER_ROLE_WEIGHTS),
        rng.choice(4, size=n, p=v.ROLE_WEIGHTS),
    )
    salutation = (rng.random(n) < SHARE_MS).astype(np.int64)
    source_kind = np.where(
        buyer,
        rng.choice(len(SOURCES), size=n, p=SOURCE_WEIGHTS_BUYER),
        rng.choice(len(SOURCES), size=n, p=SOURCE_WEIGHTS_OTHER),
    )
    created = _created(accounts, account, buyer, first_order_day, timeline, rng)
    source_kind, fair_name, created = _fair_sources(source_kind, country, created, timeline)
    first_names, last_names, positions, emails = _people(
        accounts, account, country, language, role, salutation, rng
    )
    consent = rng.choice(len(CONSENT), size=n, p=CONSENT_WEIGHTS)
    # Double opt-in: most people click the confirmation link within minutes, some days later.
    confirm_delay = np.minimum(rng.lognormal(np.log(900), 1.5, n), 3 * ct.SECONDS_PER_DAY)
    confirm_delay = confirm_delay.astype(np.int64)
    consent_at = np.where(
        consent == 0, np.minimum(created + confirm_delay, timeline.cutoff - 1), -1
    )
    lifecycle = _lifecycle(buyer, accounts.customer[account], rng)
    updated = created + ((timeline.cutoff - 1 - created) * rng.random(n) ** 2).astype(np.int64)
    tags, interests = _tags_and_interests(accounts, account, buyer, role, consent, source_kind, rng)
    engagement = rng.lognormal(0.0, 1.1, n) * np.where(accounts.customer[account], 1.4, 1.0)
    accounts.created[:] = _account_created(accounts, account, created, timeline, rng)
    accounts.updated[:] = np.maximum(
        accounts.created,
        np.maximum.reduceat(updated, np.flatnonzero(np.r_[True, np.diff(account) != 0])),
    )
    source = [
        f"fair:{fair}" if fair else SOURCES[kind]
        for kind, fair in zip(source_kind.tolist(), fair_name, strict=True)
    ]
    return Contacts(
        number=number,
        account=account,
        buyer=buyer,
        country=country,
        language=language,
        role=role,
        salutation=salutation,
        first_name=first_names,
        last_name=last_names,
        position=positions,
        email=emails,
        source=source,
        source_kind=source_kind,
        fair_name=fair_name,
        created=created,
        updated=updated,
        consent=consent,
        consent_at=consent_at,
        lifecycle=lifecycle,
        tags=tags,
        interests=interests,
        engagement=engagement,
    )


def _created(accounts, account, buyer, first_order_day, timeline: Timeline, rng) -> np.ndarray:
    """Buyers became known a few weeks to a year before their first order; others any time,
    more of them recently (marketing grew)."""
    n = account.size
    start = timeline.history_start_day * ct.SECONDS_PER_DAY
    span = timeline.cutoff - start
    anytime = timeline.cutoff - 1 - (span * rng.random(n) ** 1.4).astype(np.int64)
    lead_time = rng.integers(20, 400, n) * ct.SECONDS_PER_DAY
    before_order = first_order_day[account] * ct.SECONDS_PER_DAY - lead_time
    office_hours = rng.integers(7 * 3600, 17 * 3600, n)
    buyer_created = np.maximum(before_order, start) // ct.SECONDS_PER_DAY * ct.SECONDS_PER_DAY
    return np.where(buyer, buyer_created + office_hours, anytime)


def _fair_sources(source_kind, country, created, timeline: Timeline):
    """Contacts from a fair were created on a fair day: the last fair of their country
    before the drawn creation time; with no such fair they came from the web instead."""
    occurrences = timeline.fair_occurrences
    fair_names: list[str | None] = [None] * created.size
    fair_index = SOURCES.index("fair")
    created = created.copy()
    source_kind = source_kind.copy()
    for c, code in enumerate(v.COUNTRIES):
        held = [o for o in occurrences if code in o.fair.countries]
        rows = np.flatnonzero((source_kind == fair_index) & (country == c))
        if rows.size == 0:
            continue
        if not held:
            source_kind[rows] = SOURCES.index("web")
            continue
        first_days = np.array([o.first_day for o in held])
        day = created[rows] // ct.SECONDS_PER_DAY
        which = np.searchsorted(first_days, day, side="right") - 1
        too_early = which < 0
        source_kind[rows[too_early]] = SOURCES.index("web")
        for row, w in zip(rows[~too_early].tolist(), which[~too_early].tolist(), strict=True):
            occurrence = held[w]
            on_day = occurrence.first_day + (row % occurrence.fair.days)
            created[row] = on_day * ct.SECONDS_PER_DAY + created[row] % ct.SECONDS_PER_DAY
            fair_names[row] = occurrence.name
    created = np.minimum(created, timeline.cutoff - 1)
    return source_kind, fair_names, created


def _people(accounts, account, country, language, role, salutation, rng):
    """Names, job titles and unique addresses (one address convention per company)."""
    n = account.size
    name_pick = rng.integers(0, 1 << 30, (n, 2))
    position_pick = rng.integers(0, 1 << 30, n)
    first_names, last_names, positions, emails = [], [], [], []
    taken: set[str] = set()
    current_account = -1
    for i in range(n):
        code = v.COUNTRIES[country[i]]
        form = SALUTATIONS[salutation[i]]
        firsts = v.FIRST_NAMES[code][form]
        lasts = v.LAST_NAMES[code]
        first = firsts[name_pick[i, 0] % len(firsts)]
        last = lasts[name_pick[i, 1] % len(lasts)]
        titles = v.POSITIONS[v.LANGUAGES[language[i]]][v.DECISION_ROLES[role[i]]]
        title = titles[position_pick[i] % len(titles)][salutation[i]]
        a = account[i]
        if a != current_account:
            current_account, taken = a, set()
        local = email_local_part(v.EMAIL_PATTERNS[accounts.email_pattern[a]], first, last)
        unique, suffix = local, 1
        while unique in taken:
            suffix += 1
            unique = f"{local}{suffix}"
        taken.add(unique)
        first_names.append(first)
        last_names.append(last)
        positions.append(title)
        emails.append(f"{unique}@{accounts.domain[a]}")
    return first_names, last_names, positions, emails


def _lifecycle(buyer, at_customer, rng) -> np.ndarray:
    """CRM stages: most buyers are 'customer'; some leads were accepted by sales."""
    u = rng.random(buyer.size)
    lead_stage = np.select([u < 0.04, u < 0.06], [1, 2], 0)
    colleague_stage = np.where(u < 0.3, 3, 0)
    return np.where(
        buyer, np.where(u < 0.85, 3, 0), np.where(at_customer, colleague_stage, lead_stage)
    )


def _tags_and_interests(accounts, account, buyer, role, consent, source_kind, rng):
    n = account.size
    at_customer = accounts.customer[account]
    industry = accounts.industry[account]
    u = rng.random((n, 16))
    tags = {
        "newsletter": (consent == 0) & (u[:, 0] < 0.6),
        "key_account": at_customer & (accounts.employees[account] >= 1000),
        "service_contract": buyer & (u[:, 1] < 0.3),
        "trade_fair_visitor": source_kind == SOURCES.index("fair"),
        "ebook_reader": source_kind == SOURCES.index("ebook"),
        # A few leads are not buyers at all; scoring marks them down.
        "student": ~at_customer & (u[:, 2] < 0.01),
        "press": ~at_customer & (u[:, 2] >= 0.01) & (u[:, 2] < 0.015),
        "competitor": ~at_customer & (u[:, 2] >= 0.015) & (u[:, 2] < 0.02),
    }
    metal = np.isin(industry, [v.INDUSTRIES.index(i) for i in ("machine_tools", "metalworking")])
    food = industry == v.INDUSTRIES.index("food_processing")
    purchaser = role == v.DECISION_ROLES.index("purchaser")
    production = role == v.DECISION_ROLES.index("production_manager")
    director = role == v.DECISION_ROLES.index("managing_director")
    interests = {
        "hydraulic_components": u[:, 3] < np.where(metal | production, 0.6, 0.3),
        "maintenance": u[:, 4] < np.where(at_customer, 0.6, 0.15),
        "cleaning": u[:, 5] < np.where(at_customer, 0.45, 0.1) + np.where(food, 0.2, 0.0),
        "software": u[:, 6] < 0.2,
        "hydrostat_3000": u[:, 7] < 0.25,
        "service_contracts": u[:, 8] < np.where(purchaser, 0.35, 0.05),
        "spare_parts": u[:, 9] < np.where(purchaser | production, 0.3, 0.05),
        "pricing": u[:, 10] < np.where(purchaser, 0.4, 0.1),
        "energy_efficiency": u[:, 11] < np.where(director, 0.35, 0.1),
        "investment": u[:, 12] < np.where(director, 0.3, 0.03),
        "productivity": u[:, 13] < np.where(director | production, 0.3, 0.05),
    }
    return _mask(tags, v.TAGS), _mask(interests, v.INTERESTS)


def _mask(bits: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """One bit per name, in the order of `names` (see copytext.flag_arrays)."""
    assert set(bits) == set(names)
    mask = np.zeros(next(iter(bits.values())).size, dtype=np.int64)
    for position, name in enumerate(names):
        mask |= bits[name].astype(np.int64) << position
    return mask


def _account_created(accounts, account, created, timeline: Timeline, rng) -> np.ndarray:
    """An account exists in the CRM a little before its first contact."""
    boundaries = np.flatnonzero(np.r_[True, np.diff(account) != 0])
    earliest = np.minimum.reduceat(created, boundaries)
    earlier = rng.integers(0, 60, accounts.size) * ct.SECONDS_PER_DAY
    start = timeline.history_start_day * ct.SECONDS_PER_DAY
    return np.maximum(earliest - earlier, np.minimum(start, earliest))
