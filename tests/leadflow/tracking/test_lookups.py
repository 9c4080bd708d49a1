"""The cached ops.outbox / ops.links lookups on the event loop's own connections."""

from __future__ import annotations

import asyncio
import datetime as dt

import sqlalchemy as sa

from leadflow.tracking.tracking import Lookups


def test_lookups_read_once_and_follow_a_new_event_loop(warehouse, mails):
    lookups = Lookups(warehouse, connections=2)

    async def read_all() -> tuple:
        found = await asyncio.gather(
            lookups.mail(mails.anna_mail),
            lookups.mail(mails.ben_mail),
            lookups.link(mails.product_link),
            lookups.link("no-such-link"),
        )
        return found, len(lookups._idle)

    (anna, ben, link, missing), idle = asyncio.run(read_all())
    assert (anna.contact_id, ben.contact_id, missing) == ("C-1", "C-2", None)
    assert link.url == "https://www.steinhoff.example/hydrostat?x=1" and link.redirectable
    assert link.sent_at.tzinfo is dt.UTC  # compared with now on every click
    assert idle == 2  # four concurrent misses on at most two connections
    with warehouse.begin() as connection:  # cached rows are not read again
        connection.execute(sa.text("update ops.links set url = 'https://changed.example/'"))

    async def again() -> tuple:
        # A new loop: the old loop's connections are dropped, new ones opened.
        found = await lookups.link(mails.product_link), await lookups.link(mails.pricing_link)
        await lookups.aclose()
        return found

    cached, fresh = asyncio.run(again())
    assert cached is link
    assert fresh.url == "https://changed.example/"
    assert lookups._idle == []
