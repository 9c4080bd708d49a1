"""Orders, order lines and the installed base of a chunk's customer accounts.

A customer's story: a first order of one or more HydroStats (a HydroStat 2000 before the
3000's launch, mostly the 3000 after it), installed a few weeks later; then repeat orders of
cleaning agent, maintenance kits shortly before each manufacturer maintenance (every 24
months for the 2000, 36 for the 3000), now and then a diagnostic device or another machine,
and a HydroScope licence renewed every year by most who buy one. Some repeat orders are
cancelled.
Amounts are integer cents throughout, so an order's net amount is exactly its lines' sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadflow.demo import copytext as ct
from leadflow.demo.timeline import INSTALL_LAG_DAYS, Timeline
from leadflow.demo.vocabulary import PRODUCTS

PRODUCT_IDS = tuple(p.product_id for p in PRODUCTS)
HS2000, HS3000, CLN10, CLN25, KIT, DIAG, SCOPE = range(len(PRODUCTS))
HYDROSTATS = (HS2000, HS3000)
LIST_PRICE = np.array([p.list_price_cents for p in PRODUCTS], dtype=np.int64)
INTERVAL_MONTHS = np.array([p.maintenance_interval_months or 0 for p in PRODUCTS])

# Order kinds, in the order they are listed for one day.
FIRST, SECOND_MACHINE, CONSUMABLES, MAINTENANCE, DIAGNOSTICS, SOFTWARE = range(6)
CANCELLED_SHARE = 0.03
HS2000_AFTER_LAUNCH_SHARE = 0.2
SECOND_MACHINE_SHARE = 0.15
CONSUMING_SHARE = 0.7
MAINTENANCE_ORDER_SHARE = 0.6
DIAGNOSTICS_SHARE = 0.2
SOFTWARE_SHARE = 0.25
LICENCE_RENEWAL_SHARE = 0.85
YEAR_DAYS = 365


@dataclass
class FirstOrders:
    """Per account of the chunk: the first (hydrostat) order; -1 where none."""

    day: np.ndarray
    install_day: np.ndarray


def draw_first_orders(
    customer: np.ndarray, upsell: np.ndarray, timeline: Timeline, rng: np.random.Generator
) -> FirstOrders:
    n = customer.size
    day = rng.integers(timeline.history_start_day + 30, timeline.as_of_day + 1, n)
    lag = rng.integers(INSTALL_LAG_DAYS[0], INSTALL_LAG_DAYS[1] + 1, n)
    install = np.minimum(day + lag, timeline.as_of_day)
    # Up-sell customers: installation first (the segment's condition), the order before it.
    chosen = rng.choice(timeline.upsell_install_days, size=n)
    install = np.where(upsell, chosen, install)
    day = np.where(upsell, chosen - lag, day)
    return FirstOrders(np.where(customer, day, -1), np.where(customer, install, -1))


@dataclass
class Orders:
    """A chunk's orders, lines and installations (rows aligned per table)."""

    # orders
    number: np.ndarray
    account: np.ndarray  # index into the chunk's accounts
    ordered_at: np.ndarray  # epoch seconds
    cancelled: np.ndarray
    net_cents: np.ndarray
    source: list[bytes]
    # order_items
    item_order: np.ndarray  # index into the orders above
    item_line: np.ndarray
    item_product: np.ndarray
    item_quantity: np.ndarray
    item_cents: np.ndarray
    # installed_base
    install_number: np.ndarray
    install_order: np.ndarray  # index into the orders above
    install_product: np.ndarray
    install_day: np.ndarray
    next_maintenance_day: np.ndarray

    @property
    def ids(self) -> list[bytes]:
        return ct.padded_ids("ORD-", self.number, 8)


def draw_orders(
    customer: np.ndarray,
    employees: np.ndarray,
    upsell: np.ndarray,
    first: FirstOrders,
    timeline: Timeline,
    rng: np.random.Generator,
    first_order_number: int,
    first_install_number: int,
) -> Orders:
    accounts = np.flatnonzero(customer)
    first_part = _first(accounts, employees, upsell, first, timeline, rng)
    parts = [
        first_part,
        # Up-sell customers must not own a HydroStat 3000 yet (segments.yaml).
        _second_machines(accounts[~upsell[accounts]], first, timeline, rng),
        _consumables(accounts, first, timeline, rng),
        _maintenance(accounts, first_part["machine"], first, timeline, rng),
        _one_off(accounts, first, timeline, rng, DIAGNOSTICS, DIAGNOSTICS_SHARE, DIAG),
        _licences(accounts, first, timeline, rng),
    ]
    account = np.concatenate([p["account"] for p in parts])
    day = np.concatenate([p["day"] for p in parts])
    kind = np.concatenate([p["kind"] for p in parts])
    machine = np.concatenate([p["machine"] for p in parts])
    quantity = np.concatenate([p["quantity"] for p in parts])
    install = np.concatenate([p["install"] for p in parts])
    keep = day <= timeline.as_of_day
    order = np.lexsort((kind[keep], day[keep], account[keep]))
    account, day, kind, machine, quantity, install = (
        a[keep][order] for a in (account, day, kind, machine, quantity, install)
    )
    n = account.size
    ordered_at = day * ct.SECONDS_PER_DAY + rng.integers(7 * 3600, 17 * 3600, n)
    cancelled = (kind != FIRST) & (rng.random(n) < CANCELLED_SHARE)
    items = _lines(kind, machine, quantity, rng)
    net = np.zeros(n, dtype=np.int64)
    np.add.at(net, items["order"], items["cents"])
    webshop = np.isin(kind, (CONSUMABLES, MAINTENANCE)) & (rng.random(n) < 0.5)
    installs = _installations(items, cancelled, install, timeline, first_install_number)
    return Orders(
        number=first_order_number + np.arange(n, dtype=np.int64),
        account=account,
        ordered_at=ordered_at,
        cancelled=cancelled,
        net_cents=net,
        source=[b"webshop" if w else b"crm" for w in webshop.tolist()],
        item_order=items["order"],
        item_line=items["line"],
        item_product=items["product"],
        item_quantity=items["quantity"],
        item_cents=items["cents"],
        **installs,
    )


def _part(account, day, kind, machine=None, quantity=None, install=None) -> dict:
    n = account.size
    return {
        "account": account,
        "day": day,
        "kind": np.full(n, kind),
        "machine": machine if machine is not None else np.full(n, -1),
        "quantity": quantity if quantity is not None else np.ones(n, dtype=np.int64),
        "install": install if install is not None else np.full(n, -1),
    }


def _first(accounts, employees, upsell, first: FirstOrders, timeline: Timeline, rng) -> dict:
    day = first.day[accounts]
    n = accounts.size
    older = (day < timeline.hs3000_launch_day) | (rng.random(n) < HS2000_AFTER_LAUNCH_SHARE)
    machine = np.where(older | upsell[accounts], HS2000, HS3000)
    size = employees[accounts]
    units = 1 + (rng.random(n) < np.clip(size / 3000, 0.05, 0.5)) + (rng.random(n) < 0.05)
    return _part(accounts, day, FIRST, machine, units, first.install_day[accounts])


def _second_machines(accounts, first: FirstOrders, timeline: Timeline, rng) -> dict:
    start = first.day[accounts] + 365
    chosen = accounts[
        (rng.random(accounts.size) < SECOND_MACHINE_SHARE) & (start < timeline.as_of_day)
    ]
    start = first.day[chosen] + 365
    day = start + (rng.random(chosen.size) * (timeline.as_of_day - start)).astype(np.int64)
    newer = day >= timeline.hs3000_launch_day
    machine = np.where(newer, HS3000, HS2000)
    lag = rng.integers(INSTALL_LAG_DAYS[0], INSTALL_LAG_DAYS[1] + 1, chosen.size)
    install = np.minimum(day + lag, timeline.as_of_day)
    return _part(chosen, day, SECOND_MACHINE, machine, install=install)


def _consumables(accounts, first: FirstOrders, timeline: Timeline, rng) -> dict:
    consuming = accounts[rng.random(accounts.size) < CONSUMING_SHARE]
    start = first.day[consuming] + 14
    years = np.maximum(timeline.as_of_day - start, 0) / 365
    per_year = rng.uniform(0.8, 4.0, consuming.size)
    count = rng.poisson(per_year * years)
    account = np.repeat(consuming, count)
    begin = np.repeat(start, count)
    day = begin + (rng.random(account.size) * (timeline.as_of_day - begin + 1)).astype(np.int64)
    return _part(account, day, CONSUMABLES)


def _maintenance(accounts, machine, first: FirstOrders, timeline: Timeline, rng) -> dict:
    """Kits ordered shortly before each manufacturer maintenance of the first machine."""
    installed = first.install_day[accounts]
    cycle_days = np.rint(INTERVAL_MONTHS[machine] * YEAR_DAYS / 12).astype(np.int64)
    cycles = np.maximum(timeline.as_of_day + 45 - installed, 0) // cycle_days
    account = np.repeat(accounts, cycles)
    cycle = 1 + _within_group(cycles)
    day = np.repeat(installed, cycles) + cycle * np.repeat(cycle_days, cycles)
    day -= rng.integers(0, 46, account.size)
    ordered = rng.random(account.size) < MAINTENANCE_ORDER_SHARE
    return _part(account[ordered], day[ordered], MAINTENANCE)


def _one_off(accounts, first: FirstOrders, timeline: Timeline, rng, kind, share, product):
    """A single order of `product` by `share` of customers, some time after the first order."""
    chosen = accounts[rng.random(accounts.size) < share]
    start = first.day[chosen] + 30
    chosen, start = chosen[start <= timeline.as_of_day], start[start <= timeline.as_of_day]
    day = start + (rng.random(chosen.size) * (timeline.as_of_day - start + 1)).astype(np.int64)
    return _part(chosen, day, kind, np.full(chosen.size, product))


def _licences(accounts, first: FirstOrders, timeline: Timeline, rng) -> dict:
    """HydroScope: bought within the last three years (it is newer than the machines), then
    renewed every year until a customer stops."""
    chosen = accounts[rng.random(accounts.size) < SOFTWARE_SHARE]
    start = np.maximum(first.day[chosen] + 30, timeline.as_of_day - 3 * YEAR_DAYS)
    chosen, start = chosen[start <= timeline.as_of_day], start[start <= timeline.as_of_day]
    span = timeline.as_of_day - start + 1
    bought = start + (rng.random(chosen.size) * span).astype(np.int64)
    possible = (timeline.as_of_day - bought) // YEAR_DAYS
    renewals = np.minimum(possible, rng.geometric(1 - LICENCE_RENEWAL_SHARE, bought.size) - 1)
    years = 1 + renewals
    account = np.repeat(chosen, years)
    day = np.repeat(bought, years) + _within_group(years) * YEAR_DAYS
    return _part(account, day, SOFTWARE, np.full(account.size, SCOPE))


def _within_group(counts: np.ndarray) -> np.ndarray:
    """For np.repeat(x, counts): each row's position within its group (0, 1, ...)."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def _lines(kind, machine, quantity, rng) -> dict:
    """Order lines per order kind; discounts per order; amounts in cents."""
    n = kind.size
    u = rng.random((n, 4))
    is_kind = {k: kind == k for k in range(6)}
    cleaning_10 = is_kind[CONSUMABLES] & (u[:, 0] < 0.7)
    cleaning_25 = is_kind[CONSUMABLES] & ((u[:, 1] < 0.5) | ~cleaning_10)
    candidates = [
        # (included, product, quantity)
        (np.isin(kind, (FIRST, SECOND_MACHINE)), machine, quantity),
        (is_kind[FIRST] & (u[:, 2] < 0.3), np.full(n, KIT), np.ones(n, dtype=np.int64)),
        (is_kind[FIRST] & (u[:, 3] < 0.4), np.full(n, CLN10), np.full(n, 2)),
        (cleaning_10, np.full(n, CLN10), rng.integers(1, 7, n)),
        (cleaning_25, np.full(n, CLN25), rng.integers(1, 4, n)),
        (is_kind[MAINTENANCE], np.full(n, KIT), np.ones(n, dtype=np.int64)),
        (is_kind[MAINTENANCE] & (u[:, 0] < 0.3), np.full(n, CLN25), np.ones(n, dtype=np.int64)),
        (is_kind[DIAGNOSTICS], machine, np.ones(n, dtype=np.int64)),
        (is_kind[SOFTWARE], machine, rng.integers(1, 4, n)),
    ]
    orders, products, quantities = [], [], []
    for included, product, qty in candidates:
        rows = np.flatnonzero(included)
        orders.append(rows)
        products.append(product[rows])
        quantities.append(qty[rows])
    order = np.concatenate(orders)
    sequence = np.argsort(order, kind="stable")
    order = order[sequence]
    product = np.concatenate(products)[sequence]
    qty = np.concatenate(quantities)[sequence].astype(np.int64)
    counts = np.bincount(order, minlength=n)
    machine_order = np.isin(kind, (FIRST, SECOND_MACHINE))
    # Discount in half-percent steps: up to 12 % on machines, up to 8 % on the rest.
    discount = np.where(machine_order, rng.integers(0, 25, n), rng.integers(0, 17, n)) / 200
    cents = np.rint(LIST_PRICE[product] * qty * (1 - discount[order])).astype(np.int64)
    return {
        "order": order,
        "line": 1 + _within_group(counts),
        "product": product,
        "quantity": qty,
        "cents": cents,
    }


def _installations(items, cancelled, install_day, timeline: Timeline, first_number) -> dict:
    """One installation per HydroStat unit of every order that was not cancelled."""
    machine_line = np.isin(items["product"], HYDROSTATS) & ~cancelled[items["order"]]
    order = np.repeat(items["order"][machine_line], items["quantity"][machine_line])
    product = np.repeat(items["product"][machine_line], items["quantity"][machine_line])
    day = install_day[order]
    return {
        "install_number": first_number + np.arange(order.size, dtype=np.int64),
        "install_order": order,
        "install_product": product,
        "install_day": day,
        "next_maintenance_day": timeline.next_maintenance(day, INTERVAL_MONTHS[product]),
    }
