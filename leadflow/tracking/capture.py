"""Lead capture over HTTP: the e-book form, its double opt-in, web events, fair leads.

Routes (SPEC §2.1, §2.2, §2.9, §2.12; docs/capture.md):

| route                     | what it does                                                    |
|---------------------------|-----------------------------------------------------------------|
| `POST /forms/ebook`       | form or JSON; records the lead, mails the confirmation link     |
| `GET /confirm/{token}`    | confirms consent, records the download, shows the e-book link   |
| `POST /confirm/{token}`   | the same, for the button shown to link scanners (below)         |
| `POST /events/web`        | a page visit of a visitor id (and a signed link's contact)      |
| `POST /fair-leads`        | snapADDY-style leads with `X-API-Key` → raw.fair_leads          |

What is committed before the answer and what is buffered: the contact, the opt-in request,
the consent, the visitor tie and the fair leads are committed in the request; the events
(`form_submit`, `download`, `web_visit`) go through the service's event writer
(`request.app.state.writer`, batched COPY) — losing one in a crash loses a data point, not
a consent.

Link scanners. Mail security gateways open every link of an incoming mail, and a GET that
confirms would let them opt people in who never clicked. A confirmation GET whose user
agent or address matches the machine-traffic rules (leadflow.tracking.machine) therefore
changes nothing and shows a page with a confirm button (a POST) instead.

Visitors. A form submission with a `visitor_id`, or a web event with a valid signed
`contact_token` (a click or view-in-browser token of one of our mails), ties the visitor to
the contact (leadflow.tracking.leads). A web event is then attributed at once, and the
visitor's earlier anonymous events are given the contact. Events the writer still buffers
are written before that update, under a lock that web events take too, so in one service
process no event of the visitor stays anonymous. (With several processes, an anonymous
event another process buffers at the same moment keeps no contact until the nightly
attribution picks up `ops.visitors`.)

The app provides `app.state.engine` (the warehouse), `app.state.config` (the loaded
configuration), `app.state.settings` (leadflow.tracking.settings.TrackingSettings) and
`app.state.writer` (leadflow.tracking.writer.EventWriter).
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import json
import logging
import threading
import time
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from leadflow.config.loader import Config
from leadflow.imports import fields as f
from leadflow.imports.fields import FieldError
from leadflow.messaging import links
from leadflow.messaging.delivery import DeliveryError
from leadflow.tracking import double_opt_in, leads, pages
from leadflow.tracking.machine import MachineRules

log = logging.getLogger(__name__)

router = APIRouter(tags=["capture"])

EBOOK_SOURCE = "web:ebook"
MAX_FAIR_LEADS = 1000
MAX_TEXT = 500
# A visitor's anonymous events still buffered are written before they are attributed; this
# long at most is waited for a batch the writer's own thread is writing.
ATTACH_WAIT_SECONDS = 5.0
# Web events of one process take this lock around "who is this visitor? → buffer"; tying a
# visitor takes it around committing the tie (module docstring).
_visitor_lock = threading.Lock()

Text = Annotated[str, Field(max_length=MAX_TEXT)]


def _parsed(parser, value: str | None) -> str | None:
    """A text field through one of the import's parsers (trimmed; empty → None)."""
    if value is None or not value.strip():
        return None
    try:
        return parser(value.strip())
    except FieldError as error:
        raise ValueError(str(error)) from None


def _optional_text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if "\x00" in value:
        raise ValueError("contains the control character NUL (U+0000)")
    return value or None


# --- the e-book form ---------------------------------------------------------------------


class EbookForm(BaseModel):
    """The e-book capture form (as form fields or a JSON object)."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT)

    email: str = Field(description="The address the confirmation link is sent to.")
    salutation: Text | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    company: Text | None = None
    position: Text | None = None
    country: str | None = Field(None, description="ISO 3166 alpha-2 code, e.g. DE.")
    language: str | None = Field(
        None, description="ISO 639-1 code; the confirmation mail's language (de, en, fr, it, es)."
    )
    asset_id: str = Field(description="The id of a gated asset in company.assets.")
    consent: bool = Field(description="The consent checkbox; must be ticked.")
    consent_text_version: Text = Field(description="Which consent text the form showed.")
    visitor_id: Text | None = Field(None, description="The web visitor id, if known.")

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("a value is required")
        return _parsed(f.email, value)

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> Any:
        return _parsed(f.country, value) if isinstance(value, str) else value

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        return _parsed(f.language, value) if isinstance(value, str) else value

    @field_validator("salutation", "first_name", "last_name", "company", "position", "visitor_id")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return _optional_text(value)

    @field_validator("asset_id", "consent_text_version")
    @classmethod
    def _required_text(cls, value: str) -> str:
        value = _optional_text(value) or ""
        if not value:
            raise ValueError("a value is required")
        return value

    @field_validator("consent")
    @classmethod
    def _ticked(cls, value: bool) -> bool:
        if not value:
            raise ValueError("the consent checkbox must be ticked")
        return value

    def lead(self) -> leads.FormLead:
        return leads.FormLead(
            email=self.email,
            salutation=self.salutation,
            first_name=self.first_name,
            last_name=self.last_name,
            company=self.company,
            position=self.position,
            country=self.country,
            language=self.language,
        )


def _body_schema(model: type[BaseModel], *, form: bool) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    content = {"application/json": {"schema": schema}}
    if form:
        content["application/x-www-form-urlencoded"] = {"schema": schema}
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/forms/ebook",
    summary="Capture an e-book lead and send the double-opt-in mail",
    openapi_extra=_body_schema(EbookForm, form=True),
    responses={
        200: {"description": "Confirmation mail sent (JSON for JSON requests, else a page)."},
        422: {"description": "A field is missing or invalid; `detail` names it."},
        503: {"description": "The confirmation mail could not be sent; try again."},
    },
)
async def submit_ebook_form(request: Request):
    data, wants_json = await _form_or_json(request)
    form = _validated(EbookForm, data)
    config: Config = request.app.state.config
    asset = _gated_asset(config, form.asset_id)
    now = dt.datetime.now(dt.UTC)
    ip, user_agent = _client(request)
    try:
        await run_in_threadpool(
            _capture_ebook, request, form, asset.id, now=now, ip=ip, user_agent=user_agent
        )
    except DeliveryError as error:
        log.error("confirmation mail not sent: %s", error)
        raise HTTPException(
            503, "The confirmation mail could not be sent. Please try again later."
        ) from None
    if wants_json:
        return JSONResponse({"status": "confirmation_sent"})
    language = pages.language_for(request, config, form.language)
    return pages.page(language, "check_inbox", [pages.text(language, "check_inbox_text")])


def _capture_ebook(
    request: Request, form: EbookForm, asset_id: str, *, now, ip, user_agent
) -> None:
    app = request.app
    config: Config = app.state.config
    with app.state.engine.connect() as connection:
        contact = leads.upsert_form_contact(
            connection, form.lead(), source=EBOOK_SOURCE, submitted_at=now
        )
        blocked = double_opt_in.confirmation_blocked(connection, contact.email, now)
        opt_in = (
            None
            if blocked
            else double_opt_in.create_request(
                connection,
                config,
                contact_id=contact.contact_id,
                email=contact.email,
                asset_id=asset_id,
                consent_text_version=form.consent_text_version,
                source=EBOOK_SOURCE,
                visitor_id=form.visitor_id,
                ip=ip,
                user_agent=user_agent,
                now=now,
            )
        )
        _commit_with_visitor(connection, form.visitor_id, contact.contact_id, "form_submit")
    app.state.writer.add(
        {
            "event_type": "form_submit",
            "contact_id": contact.contact_id,
            "visitor_id": form.visitor_id,
            "occurred_at": now,
            "asset_id": asset_id,
            "user_agent": user_agent,
            "properties": {
                "form": "ebook",
                "consent_text_version": form.consent_text_version,
                "new_contact": contact.created,
            },
        }
    )
    if form.visitor_id is not None:
        _attach_visitor(app, form.visitor_id, contact.contact_id)
    if opt_in is None:
        log.info("no confirmation mail to %s: %s", contact.contact_id, blocked)
        return
    message = double_opt_in.confirmation_message(
        config,
        recipient=contact.email,
        token=opt_in.token,
        expires_at=opt_in.expires_at,
        language=form.language,
    )
    double_opt_in.send_confirmation(config, message)


def _gated_asset(config: Config, asset_id: str):
    asset = next((a for a in config.company.assets if a.id == asset_id), None)
    if asset is None or not asset.gated or not asset.url:
        gated = ", ".join(a.id for a in config.company.assets if a.gated and a.url)
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "asset_id"),
                    "msg": f"{asset_id!r} is not a gated asset with a download; known: {gated}",
                    "input": asset_id,
                }
            ]
        )
    return asset


# --- confirmation ------------------------------------------------------------------------


@router.get(
    "/confirm/{token}",
    summary="Confirm a double opt-in and show the download",
    response_class=HTMLResponse,
    responses={404: {"description": "Unknown link."}, 410: {"description": "Expired link."}},
)
def confirm_get(token: str, request: Request) -> HTMLResponse:
    ip, user_agent = _client(request)
    rules = _machine_rules(request)
    if rules.reason("click", user_agent=user_agent, ip=ip) is not None:
        # A link scanner: confirm nothing, offer a button a person can press.
        language = pages.language_for(request, request.app.state.config)
        return pages.page(
            language,
            "please_confirm",
            [pages.text(language, "please_confirm_text")],
            form=(f"/confirm/{token}", "confirm", ""),
        )
    return _confirm(request, token, ip=ip, user_agent=user_agent)


@router.post(
    "/confirm/{token}",
    summary="Confirm a double opt-in (the button of the scanner page)",
    response_class=HTMLResponse,
    responses={404: {"description": "Unknown link."}, 410: {"description": "Expired link."}},
)
def confirm_post(token: str, request: Request) -> HTMLResponse:
    ip, user_agent = _client(request)
    return _confirm(request, token, ip=ip, user_agent=user_agent)


def _confirm(request: Request, token: str, *, ip, user_agent) -> HTMLResponse:
    app = request.app
    config: Config = app.state.config
    now = dt.datetime.now(dt.UTC)
    if len(token) > MAX_TEXT:
        return _invalid_link(pages.language_for(request, config))
    with app.state.engine.connect() as connection:
        outcome = double_opt_in.confirm(connection, token, ip=ip, user_agent=user_agent, now=now)
        visitor_id = outcome.visitor_id if outcome.status == "confirmed" else None
        _commit_with_visitor(connection, visitor_id, outcome.contact_id, "opt_in")
        known = pages.contact_language(connection, outcome.contact_id)
    language = pages.language_for(request, config, known)
    if outcome.status == "unknown":
        return _invalid_link(language)
    if outcome.status == "expired":
        return pages.page(
            language, "expired", [pages.text(language, "expired_text")], status_code=410
        )
    if outcome.status == "confirmed":
        app.state.writer.add(
            {
                "event_type": "download",
                "contact_id": outcome.contact_id,
                "visitor_id": outcome.visitor_id,
                "occurred_at": now,
                "asset_id": outcome.asset_id,
                "user_agent": user_agent,
                "properties": {"via": "double_opt_in"},
            }
        )
        if outcome.visitor_id is not None:
            _attach_visitor(app, outcome.visitor_id, outcome.contact_id)
    asset = next((a for a in config.company.assets if a.id == outcome.asset_id), None)
    confirmed = [pages.text(language, "confirmed_text")]
    if asset is None or not asset.url:
        return pages.page(language, "thank_you", confirmed)
    return pages.page(language, "download_ready", confirmed, link=(asset.url, asset.name))


def _invalid_link(language: str) -> HTMLResponse:
    return pages.page(
        language, "invalid_link", [pages.text(language, "invalid_link_text")], status_code=404
    )


# --- web events --------------------------------------------------------------------------


class WebEvent(BaseModel):
    """A page visit reported by the website's tracking snippet."""

    model_config = ConfigDict(extra="forbid")

    visitor_id: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2048)
    occurred_at: dt.datetime | None = Field(
        None, description="When the page was viewed (no offset: UTC); default: now."
    )
    contact_token: str | None = Field(
        None,
        max_length=MAX_TEXT,
        description="A click or view-in-browser token from one of our mails: names the contact.",
    )

    @field_validator("visitor_id", "url", "contact_token", mode="before")
    @classmethod
    def _unicode(cls, value: Any) -> Any:
        return _no_surrogates(value) if isinstance(value, str) else value

    @field_validator("visitor_id")
    @classmethod
    def _visitor(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ord(char) < 32 for char in value):
            raise ValueError("must be non-empty text without control characters")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if not value.lower().startswith(("http://", "https://")) or any(
            ord(char) < 32 for char in value
        ):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        if value is not None and not dt.datetime(1970, 1, 2, tzinfo=dt.UTC) < value:
            raise ValueError("is before 1970")
        if value is not None and value > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
            raise ValueError("lies in the future")
        return value


@router.post(
    "/events/web",
    status_code=202,
    summary="Record a page visit",
    responses={422: {"description": "Invalid field (or a contact token that is not ours)."}},
)
def web_event(event: WebEvent, request: Request) -> dict[str, str]:
    app = request.app
    ip, user_agent = _client(request)
    occurred_at = event.occurred_at or dt.datetime.now(dt.UTC)
    machine = _machine_rules(request).reason("open", user_agent=user_agent, ip=ip)
    token_contact = None
    if event.contact_token is not None:
        token_contact = _contact_of_token(request, event.contact_token)
        with app.state.engine.connect() as connection:
            _commit_with_visitor(connection, event.visitor_id, token_contact, "signed_link")
        _attach_visitor(app, event.visitor_id, token_contact)
    with _visitor_lock:
        contact_id = token_contact
        if contact_id is None:
            with app.state.engine.connect() as connection:
                contact_id = leads.contact_of_visitor(connection, event.visitor_id)
        app.state.writer.add(
            {
                "event_type": "web_visit",
                "contact_id": contact_id,
                "visitor_id": event.visitor_id,
                "occurred_at": occurred_at,
                "url": event.url,
                "is_machine": machine is not None,
                "user_agent": user_agent,
                "properties": {"machine_reason": machine} if machine else None,
            }
        )
    return {"status": "accepted"}


def _contact_of_token(request: Request, token: str) -> str:
    """The contact a click or view token names; 422 for anything else (records nothing)."""
    app = request.app
    secret = app.state.secret
    for purpose in ("click", "view"):
        try:
            payload = links.verify(token, secret, purpose=purpose)
        except links.InvalidToken:
            continue
        contact_id = payload.get("contact_id")
        if purpose == "click":
            with app.state.engine.connect() as connection:
                contact_id = connection.execute(
                    sa.text("select contact_id from ops.links where link_id = :id"),
                    {"id": str(payload.get("link_id"))},
                ).scalar()
        if isinstance(contact_id, str) and contact_id:
            return contact_id
    raise RequestValidationError(
        [
            {
                "type": "value_error",
                "loc": ("body", "contact_token"),
                "msg": "is not a valid click or view token of this service",
                "input": None,
            }
        ]
    )


def _commit_with_visitor(
    connection, visitor_id: str | None, contact_id: str | None, linked_by: str
) -> None:
    """Commit the transaction, with the visitor tie when there is one (under the lock web
    events take, so an event is either buffered before the tie or sees it)."""
    if visitor_id is None or contact_id is None:
        connection.commit()
        return
    with _visitor_lock:
        leads.link_visitor(connection, visitor_id, contact_id, linked_by)
        connection.commit()


def _attach_visitor(app, visitor_id: str, contact_id: str) -> int:
    """Write the buffered events, then give the visitor's anonymous events to the contact."""
    writer = app.state.writer
    deadline = time.monotonic() + ATTACH_WAIT_SECONDS
    writer.flush()
    # A batch the writer's thread took before our flush may still be on its way.
    while writer.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
        writer.flush()
    with app.state.engine.begin() as connection:
        return leads.attach_visitor_events(connection, visitor_id, contact_id)


# --- fair leads --------------------------------------------------------------------------


class FairLead(BaseModel):
    """One trade-fair lead (the columns of the fair-lead import, docs/imports.md)."""

    model_config = ConfigDict(extra="forbid", title="FairLead")

    fair: str
    captured_at: str = Field(description="ISO-8601; no offset means UTC.")
    email: str
    captured_by: str | None = None
    salutation: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    position: str | None = None
    phone: str | None = None
    country: str | None = None
    notes: str | None = None
    interests: list[str] | str | None = Field(None, description="A list, or ';'-separated.")
    consent_proof: str | None = None


FAIR_LEAD_SCHEMA = FairLead.model_json_schema()
FAIR_LEAD_EXAMPLE = {
    "fair": "hannover_messe_2026",
    "captured_at": "2026-04-21T10:15:00+02:00",
    "captured_by": "m.keller",
    "salutation": "Frau",
    "first_name": "Jana",
    "last_name": "Novak",
    "email": "jana.novak@example.com",
    "company": "Novak Maschinenbau",
    "position": "Leiterin Instandhaltung",
    "phone": "+49 511 1234567",
    "country": "DE",
    "notes": "Interested in a HydroStat 3000 demo",
    "interests": ["hydrostat", "maintenance"],
    "consent_proof": "signature:scan-0815",
}


@router.post(
    "/fair-leads",
    summary="Land trade-fair leads (snapADDY-style JSON: one lead or a list)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            FAIR_LEAD_SCHEMA,
                            {
                                "type": "array",
                                "items": FAIR_LEAD_SCHEMA,
                                "minItems": 1,
                                "maxItems": MAX_FAIR_LEADS,
                            },
                        ]
                    },
                    "example": FAIR_LEAD_EXAMPLE,
                }
            },
        }
    },
    responses={
        401: {"description": "Missing or wrong X-API-Key."},
        422: {"description": "Invalid leads; `detail` names each lead (index) and field."},
    },
)
async def fair_leads(
    request: Request, x_api_key: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    _check_api_key(request, x_api_key)
    body = await _json_body(request)
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > MAX_FAIR_LEADS:
        raise _body_error((), f"send between 1 and {MAX_FAIR_LEADS} leads per request")
    rows, problems = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append((index, None, "a lead is a JSON object"))
            continue
        row, item_problems = leads.parse_fair_lead(index, item)
        rows.append(row)
        problems.extend(item_problems)
    if problems:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", index) + ((field,) if field else ()),
                    "msg": message,
                    "input": None,
                }
                for index, field, message in problems
            ]
        )
    engine = request.app.state.engine

    def land() -> leads.FairLeadLanding:
        with engine.begin() as connection:
            return leads.land_fair_leads(connection, rows)

    landing = await run_in_threadpool(land)
    return {
        "received": len(items),
        "inserted": landing.inserted,
        "updated": landing.updated,
        "unchanged": landing.unchanged,
        "fair_lead_ids": list(landing.fair_lead_ids),
    }


def _check_api_key(request: Request, given: str | None) -> None:
    expected = request.app.state.settings.fair_lead_api_key
    if expected is None or given is None:
        raise HTTPException(401, "a valid X-API-Key header is required")
    # Constant time: the comparison must not tell how much of a guess was right.
    if not hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"),
        expected.get_secret_value().encode("utf-8", "surrogateescape"),
    ):
        raise HTTPException(401, "a valid X-API-Key header is required")


# --- request plumbing ----------------------------------------------------------------------


async def _form_or_json(request: Request) -> tuple[dict[str, Any], bool]:
    """The body as a dict, and whether it was JSON (then the answer is JSON too)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _body_error((), "expected a JSON object")
        return body, True
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        data: dict[str, Any] = {}
        for key, value in form.multi_items():
            if not isinstance(value, str):
                raise _body_error((key,), "expected a text field, not a file")
            data[key] = value
        # An unticked checkbox is simply absent from a submitted form.
        data["consent"] = _checkbox(data.get("consent"))
        return data, False
    raise HTTPException(415, "send application/x-www-form-urlencoded, multipart or JSON")


def _checkbox(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in {"on", "true", "yes", "1"}


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        body = json.loads(raw)
        # JSON may escape lone surrogates ("\\ud800"), which no database text can hold.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, json.JSONDecodeError, RecursionError) as error:
        raise _body_error((), f"the body is not valid JSON text ({error})") from None
    return body


def _no_surrogates(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains characters that are not valid Unicode text") from None
    return value


def _validated(model: type[BaseModel], data: dict[str, Any]):
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**item, "loc": ("body", *item["loc"]), "input": None}
                for item in error.errors(include_url=False, include_context=False)
            ]
        ) from None


def _body_error(loc: tuple, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", *loc), "msg": message, "input": None}]
    )


def _client(request: Request) -> tuple[str | None, str | None]:
    ip = request.client.host if request.client else None
    user_agent = request.headers.get("user-agent")
    return _valid_ip(ip), user_agent[:MAX_TEXT] if user_agent else None


def _valid_ip(ip: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None  # e.g. the test client's "testclient"


def _machine_rules(request: Request) -> MachineRules:
    rules = getattr(request.app.state, "machine_rules", None)
    if rules is None:
        rules = MachineRules.from_config(request.app.state.config)
        request.app.state.machine_rules = rules
    return rules
