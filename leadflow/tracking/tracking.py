"""The mail tracking routes: open pixel, click redirect, one-click unsubscribe, preferences.

Every route takes a token minted by `leadflow.messaging.links` and checks it with the
tracking secret and the route's purpose before anything else; a forged, altered or
wrong-purpose token records nothing.

- `GET /o/{token}.gif` — the open pixel. Always answers the 43-byte transparent GIF with
  no-cache headers, whatever happens (a mail client shows a broken image otherwise); it
  records an `email_open` with the campaign, step and contact of the `ops.outbox` row only
  when the token is genuine and the row exists.
- `GET /c/{token}` — the click redirect. The token names an `ops.links` row; the answer is
  a 302 to exactly the URL stored in that row, and nothing else can ever be a redirect
  target (no open redirect): the URL is never read from the request. A bad token, an
  unknown link or a stored URL that is not http(s) gets a 404 without Location. Records
  `email_click` with link id and tag.
- `GET /u/{token}` — a confirmation page with a form; changes nothing (mail scanners fetch
  every link of a mail, and must not unsubscribe anyone).
- `POST /u/{token}` with `List-Unsubscribe=One-Click` (RFC 8058, what mail clients send for
  the List-Unsubscribe-Post header, and what the confirmation form posts): suppresses the
  address in scope `all` (`ops.suppressions`, reason `unsubscribe`), sets the contact's
  consent to `objected` and records an `unsubscribe` event — one transaction, committed
  before the answer: `200` with a short page, no redirect, no cookies. Repeating it changes
  nothing more and records no second event.
- `GET|POST /preferences/{token}` (the same unsubscribe token): unsubscribe from all
  marketing mail or from one tenant's mail only (scope = the tenant code; consent stays as
  it is, since the contact objected to one sender, not to all).

Open and click events go through the buffered EventWriter (fast answers, batched COPY);
the lookups behind them (`ops.links`, `ops.outbox`) are cached, since a sent mail's links
and outbox row never change. Machine traffic is flagged by `leadflow.tracking.machine`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import html
import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import psycopg
import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection, Engine

from leadflow.errors import LeadflowError
from leadflow.messaging import links, suppression
from leadflow.tracking import pages
from leadflow.tracking.pages import NO_STORE
from leadflow.tracking.writer import insert_events, mail_event_row
from leadflow.warehouse.engine import connection_params

log = logging.getLogger(__name__)

# The smallest transparent GIF: 1×1, one transparent palette entry (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
ONE_CLICK = "One-Click"
CACHE_SIZE = 100_000
MAX_USER_AGENT = 512

router = APIRouter(tags=["mail tracking"])


@dataclass(frozen=True)
class Link:
    link_id: str
    url: str
    tag: str | None
    outbox_id: int | None
    campaign_id: str | None
    step_id: str | None
    contact_id: str | None
    sent_at: dt.datetime | None

    @functools.cached_property
    def redirectable(self) -> bool:
        """Checked once per cached link rather than on every click."""
        return _redirectable(self.url)


@dataclass(frozen=True)
class Mail:
    outbox_id: int
    campaign_id: str
    step_id: str
    contact_id: str
    tenant_code: str | None


class Lookups:
    """`ops.links` and `ops.outbox` rows by id, cached: a sent mail's rows never change.

    Only found rows are cached (a missing row may still be written); the oldest entry goes
    when the cache is full. A miss is one prepared query on an asynchronous psycopg
    connection of the event loop — no pool checkout, no ping and no hop to a worker thread
    (that hop cost more than the query): this is the hot path of every first open and
    click. At most `connections` queries run at once, each on its own connection; a failed
    query drops its connection.
    """

    def __init__(self, engine: Engine, size: int = CACHE_SIZE, connections: int = 4) -> None:
        self.engine = engine
        self.size = size
        self.connections = connections
        self._links: dict[str, Link] = {}
        self._mails: dict[int, Mail] = {}
        self._idle: list[psycopg.AsyncConnection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(connections)

    async def link(self, link_id: str) -> Link | None:
        found = self._links.get(link_id)
        if found is None:
            row = await self._query(LINK_QUERY, link_id)
            if row is not None:
                found = Link(*row[:-1], sent_at=_utc(row[-1]))
                _remember(self._links, link_id, found, self.size)
        return found

    async def mail(self, outbox_id: int) -> Mail | None:
        found = self._mails.get(outbox_id)
        if found is None:
            row = await self._query(MAIL_QUERY, outbox_id)
            if row is not None:
                found = Mail(*row)
                _remember(self._mails, outbox_id, found, self.size)
        return found

    async def _query(self, query: str, key: Any) -> tuple | None:
        self._follow_running_loop()
        async with self._slots:
            connection = self._idle.pop() if self._idle else await self._connect()
            try:
                async with connection.cursor() as cursor:
                    await cursor.execute(query, (key,), prepare=True)
                    row = await cursor.fetchone()
            except BaseException:
                with contextlib.suppress(Exception):  # a broken connection may fail to close
                    await connection.close()
                raise
            self._idle.append(connection)
            return row

    async def _connect(self) -> psycopg.AsyncConnection:
        conninfo = connection_params(self.engine.url).libpq_url()
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True)

    def _follow_running_loop(self) -> None:
        # Connections belong to the loop that opened them; a new loop (a test client that
        # runs each request in its own) starts afresh, dropping those of the old one.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._drop_idle()
            self._loop = loop
            self._slots = asyncio.Semaphore(self.connections)

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.pgconn.finish()  # no await: its loop may be gone

    async def aclose(self) -> None:
        """Close the connections (the service's shutdown)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(Exception):
                await connection.close()


LINK_QUERY = (
    "select l.link_id, l.url, l.tag, l.outbox_id, l.campaign_id, l.step_id, l.contact_id, "
    "o.sent_at from ops.links l left join ops.outbox o on o.outbox_id = l.outbox_id "
    "where l.link_id = %s"
)
MAIL_QUERY = (
    "select outbox_id, campaign_id, step_id, contact_id, tenant_code from ops.outbox "
    "where outbox_id = %s"
)


def load_mail(connection: Connection, outbox_id: int) -> Mail | None:
    statement = sa.text(
        "select outbox_id, campaign_id, step_id, contact_id, tenant_code "
        "from ops.outbox where outbox_id = :outbox_id"
    )
    row = connection.execute(statement, {"outbox_id": outbox_id}).first()
    return None if row is None else Mail(**row._mapping)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    # psycopg gives the session's zone (a ZoneInfo); every click compares sent_at with
    # now in UTC, which is cheaper between two datetimes in the same fixed zone.
    return None if moment is None else moment.astimezone(dt.UTC)


def _remember(cache: dict, key: Any, value: Any, size: int) -> None:
    if len(cache) >= size:
        cache.pop(next(iter(cache)))
    cache[key] = value


# --- open pixel and click ----------------------------------------------------------------


@router.get(
    "/o/{token}.gif",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}, "description": "A transparent pixel."}},
    summary="Open pixel",
)
async def open_pixel(token: str, request: Request) -> Response:
    """Always the transparent GIF; records `email_open` for a genuine token."""
    try:
        await _record_open(token, request)
    except Exception:  # the pixel is answered whatever recording does
        log.exception("recording an open failed")
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


async def _record_open(token: str, request: Request) -> None:
    state = request.app.state
    payload = _verified(token, state, "open")
    if payload is None:
        return
    outbox_id = _int(payload.get("outbox_id"))
    mail = await state.lookups.mail(outbox_id) if outbox_id is not None else None
    if mail is None:
        return
    now = dt.datetime.now(dt.UTC)
    user_agent, ip = _client(request)
    reason = state.machine_rules.reason("open", user_agent=user_agent, ip=ip)
    _add_mail_event(state, "email_open", mail, now, user_agent, reason)


@router.get(
    "/c/{token}",
    response_class=Response,
    status_code=302,
    responses={
        302: {"description": "Redirect to the URL stored for the link."},
        404: {"description": "Unknown or invalid link."},
    },
    summary="Click redirect",
)
async def click(token: str, request: Request) -> Response:
    """302 to the URL stored for the token's link; 404 for anything else."""
    state = request.app.state
    payload = _verified(token, state, "click")
    link_id = payload.get("link_id") if payload else None
    link = await state.lookups.link(link_id) if isinstance(link_id, str) else None
    if link is None or not link.redirectable:
        return _not_found()
    try:
        _record_click(link, request)
    except Exception:  # the person still gets where the link goes
        log.exception("recording a click failed")
    headers = {"Location": link.url, "Referrer-Policy": "no-referrer", **NO_STORE}
    return Response(status_code=302, headers=headers)


def _record_click(link: Link, request: Request) -> None:
    state = request.app.state
    now = dt.datetime.now(dt.UTC)
    user_agent, ip = _client(request)
    reason = state.machine_rules.reason(
        "click",
        user_agent=user_agent,
        ip=ip,
        occurred_at=now,
        sent_at=link.sent_at,
        link_tag=link.tag,
    )
    _add_mail_event(
        state,
        "email_click",
        link,
        now,
        user_agent,
        reason,
        link_id=link.link_id,
        link_tag=link.tag,
        url=link.url,
    )


def _add_mail_event(
    state: Any,
    event_type: str,
    sent: Mail | Link,
    now: dt.datetime,
    user_agent: str | None,
    machine_reason: str | None,
    **link: str | None,
) -> None:
    """Buffer the open or click of the sent mail (or link) `sent`, as of `now`."""
    row = mail_event_row(
        event_type,
        now,
        contact_id=sent.contact_id,
        campaign_id=sent.campaign_id,
        step_id=sent.step_id,
        is_machine=machine_reason is not None,
        user_agent=user_agent,
        properties=_properties(sent.outbox_id, machine_reason),
        **link,
    )
    state.writer.add_row(row)


def _redirectable(url: str) -> bool:
    """Only absolute http(s) URLs with a host: a damaged row must not become a redirect."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# --- unsubscribe and preferences ----------------------------------------------------------


class UnsubscribeError(LeadflowError):
    """The token is genuine but its contact is gone."""


@router.get("/u/{token}", response_class=HTMLResponse, summary="Unsubscribe confirmation page")
def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    """A page with a button that posts the one-click form; changes nothing."""
    payload = _verified(token, request.app.state, "unsubscribe")
    language = _language(request, payload)
    if payload is None:
        return _not_found_page(language)
    question = [pages.text(language, "unsubscribe_question")]
    one_click = f'<input type="hidden" name="List-Unsubscribe" value="{ONE_CLICK}">'
    return pages.page(language, "unsubscribe", question, form=("", "unsubscribe", one_click))


@router.post(
    "/u/{token}",
    response_class=HTMLResponse,
    responses={400: {"description": "Not a one-click request."}, 404: {"description": "Bad"}},
    summary="One-click unsubscribe (RFC 8058)",
)
def unsubscribe_one_click(
    token: str,
    request: Request,
    list_unsubscribe: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
) -> HTMLResponse:
    """Suppress the address for all marketing mail; committed before the answer."""
    payload = _verified(token, request.app.state, "unsubscribe")
    language = _language(request, payload)
    if payload is None:
        return _not_found_page(language)
    if list_unsubscribe != ONE_CLICK:
        expected = ["Expected List-Unsubscribe=One-Click."]  # for mail clients, not people
        return pages.page(language, "unsubscribe", expected, status_code=400)
    return _unsubscribed(
        request.app.state, payload, suppression.ALL, "one_click", language, "unsubscribed"
    )


@router.get("/preferences/{token}", response_class=HTMLResponse, summary="Preference page")
def preferences_page(token: str, request: Request) -> HTMLResponse:
    state = request.app.state
    payload = _verified(token, state, "unsubscribe")
    language = _language(request, payload)
    if payload is None:
        return _not_found_page(language)
    options = [("all", pages.text(language, "all_marketing"))] + [
        (tenant.code, pages.text(language, "only_tenant", tenant=tenant.name))
        for tenant in state.config.tenants
    ]
    radios = "".join(
        f'<p><label><input type="radio" name="scope" value="{html.escape(code)}"'
        f"{' checked' if code == 'all' else ''}> {html.escape(label)}</label></p>"
        for code, label in options
    )
    question = [pages.text(language, "unsubscribe_from")]
    return pages.page(language, "preferences", question, form=("", "save", radios))


@router.post(
    "/preferences/{token}",
    response_class=HTMLResponse,
    responses={400: {"description": "Unknown scope."}, 404: {"description": "Bad token."}},
    summary="Save preferences",
)
def preferences_save(
    token: str, request: Request, scope: Annotated[str, Form()] = suppression.ALL
) -> HTMLResponse:
    """Unsubscribe from all marketing mail (`all`) or from one tenant's (its code)."""
    state = request.app.state
    payload = _verified(token, state, "unsubscribe")
    language = _language(request, payload)
    if payload is None:
        return _not_found_page(language)
    if scope != suppression.ALL and scope not in {tenant.code for tenant in state.config.tenants}:
        unknown = [pages.text(language, "unknown_choice")]
        return pages.page(language, "preferences", unknown, status_code=400)
    return _unsubscribed(state, payload, scope, "preference_page", language, "preferences")


def _unsubscribed(
    state: Any, payload: dict[str, Any], scope: str, method: str, language: str, title_key: str
) -> HTMLResponse:
    """Suppress the token's contact in `scope`, then the page `title_key` saying so (404 when
    the contact is gone)."""
    try:
        unsubscribe(state.engine, payload, scope=scope, method=method)
    except UnsubscribeError:
        return _not_found_page(language)
    done = "unsubscribed_text" if scope == suppression.ALL else "saved_text"
    return pages.page(language, title_key, [pages.text(language, done)])


def unsubscribe(engine: Engine, payload: dict[str, Any], *, scope: str, method: str) -> bool:
    """Suppress the token's contact in `scope`, in one committed transaction; True when new.

    Scope `all` also sets consent to `objected`. The `unsubscribe` event is written only
    when the suppression is new, so a repeated request counts once.
    """
    contact_id = str(payload.get("contact_id", ""))
    outbox_id = _int(payload.get("outbox_id"))
    with engine.begin() as connection:
        email = connection.execute(
            sa.text("select email from raw.contacts where contact_id = :id"), {"id": contact_id}
        ).scalar()
        if email is None:
            raise UnsubscribeError(f"contact {contact_id!r} does not exist")
        mail = load_mail(connection, outbox_id) if outbox_id is not None else None
        detail = {"outbox_id": outbox_id, "method": method, "contact_id": contact_id}
        new = suppression.suppress(connection, email, "unsubscribe", method, scope, detail)
        if scope == suppression.ALL:
            connection.execute(
                sa.text(
                    "update raw.contacts set consent_status = 'objected', updated_at = now() "
                    "where contact_id = :id and consent_status <> 'objected'"
                ),
                {"id": contact_id},
            )
        if new:
            event = {
                "event_type": "unsubscribe",
                "contact_id": contact_id,
                "campaign_id": mail.campaign_id if mail else None,
                "step_id": mail.step_id if mail else None,
                "properties": {"outbox_id": outbox_id, "scope": scope, "method": method},
            }
            insert_events(connection, [event])
    return new


# --- helpers -------------------------------------------------------------------------------


def _verified(token: str, state: Any, purpose: links.Purpose) -> dict[str, Any] | None:
    """The payload of a genuine token for `purpose` (see leadflow.tracking.tokens), or None."""
    return state.verifier.payload(token, purpose)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _client(request: Request) -> tuple[str | None, str | None]:
    """User agent and client address, read from the ASGI scope (the first User-Agent, as
    `request.headers.get` answers, without building the headers and address objects)."""
    scope = request.scope
    user_agent = None
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")[:MAX_USER_AGENT]
            break
    client = scope.get("client")
    return user_agent, client[0] if client else None


def _properties(outbox_id: int | None, reason: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"outbox_id": outbox_id}
    if reason is not None:
        properties["machine_reason"] = reason
    return properties


def _not_found() -> Response:
    return Response("Not found", status_code=404, media_type="text/plain", headers=NO_STORE)


def _language(request: Request, payload: dict[str, Any] | None) -> str:
    """The pages' language: the token's contact's, else the browser's (leadflow.tracking.pages).

    The confirmation page needs nothing else from the warehouse: when it cannot be asked,
    the page still comes, in the browser's language."""
    state = request.app.state
    contact_id = payload.get("contact_id") if payload else None
    known = None
    if isinstance(contact_id, str):
        try:
            with state.engine.connect() as connection:
                known = pages.contact_language(connection, contact_id)
        except sa.exc.SQLAlchemyError:
            log.warning("the contact's language could not be read", exc_info=True)
    return pages.language_for(request, state.config, known)


def _not_found_page(language: str) -> HTMLResponse:
    not_valid = [pages.text(language, "not_found_text")]
    return pages.page(language, "not_found", not_valid, status_code=404)
