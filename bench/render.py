"""Benchmark: rendering one message for many recipients against a bare Jinja render.

    .venv/bin/python bench/render.py [--recipients 10000] [--campaign upsell_hs3000]
                                     [--message hs2000_vs_hs3000] [--tenant hq]

No database, no network: the shipped configuration and templates, one message for
`--recipients` different contacts (own name, salutation, contact and outbox id) in the
tenant's language. In the same run:
- renderer: `leadflow.messaging.render.Renderer.render` per recipient, as the dispatcher
  calls it — HTML and text part, inlined CSS, signed click, pixel, unsubscribe and view URLs.
  The first mail (which prepares the message variant) is shown on its own;
- baseline: a bare Jinja render per recipient of the same mail (the message body inside
  `master.html`, plain non-sandboxed environment, fixed URLs, no CSS inlining, no text part,
  no tracking): the cost of personalisation alone.
The dispatcher's throughput target needs the renderer well under 500 µs per mail.
`LEADFLOW_BENCH_SCALE=0.1` renders a tenth.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import jinja2
from markupsafe import Markup

from leadflow.config import load_config
from leadflow.messaging.render import Renderer
from leadflow.messaging.templates import Templates
from leadflow.messaging.translation import Translator
from leadflow.paths import PROJECT_ROOT

FIRST_NAMES = ["Claire", "Jana", "Marco", "Lucía", "Paul", "Ines", "Tomás", "Greta"]
LAST_NAMES = ["Dubois", "Weber", "Rossi", "García", "Müller", "Schmidt", "Bianchi", "Lefèvre"]
SALUTATIONS = ["ms", "Herr", "Frau", None, "mr", "Mme"]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    # A fixed secret: the benchmark never writes a development secret to the state folder.
    os.environ.setdefault("LEADFLOW_TRACKING_SECRET", "bench-render-secret")
    config = load_config(PROJECT_ROOT / "include" / "config")
    templates = Templates.load(config)
    tenant = config.tenant(args.tenant)
    rows = [_row(args, index) for index in range(args.recipients)]
    contacts = [_contact(index, tenant.language) for index in range(args.recipients)]
    print(
        f"{args.recipients:,} recipients of {args.campaign}/{args.message} "
        f"({args.tenant}, {tenant.language})",
        flush=True,
    )

    baseline = _bare_jinja(config, templates, args, rows, contacts)
    renderer = Renderer(config, Translator.disabled(), templates=templates)
    started = time.perf_counter()
    renderer.render(rows[0], contacts[0])
    first = time.perf_counter() - started
    started = time.perf_counter()
    for row, contact in zip(rows[1:], contacts[1:], strict=True):
        renderer.render(row, contact)
    rest = (time.perf_counter() - started) / max(1, len(rows) - 1)

    print(f"  baseline, bare Jinja render:  {baseline * 1e6:9.1f} µs per mail")
    print(f"  renderer, first mail:         {first * 1e6:9.1f} µs (prepares the variant)")
    print(
        f"  renderer, every further mail: {rest * 1e6:9.1f} µs per mail "
        f"({rest / baseline:.1f} × baseline; target < 500 µs)"
    )
    print(f"  target < 500 µs per mail: {'met' if rest < 500e-6 else 'NOT met'}")
    return 0


def _bare_jinja(
    config: Any, templates: Templates, args: argparse.Namespace, rows: list, contacts: list
) -> float:
    """Seconds per mail for the message body inside master.html, plain Jinja, no extras."""
    source_dir = templates.templates_dir
    environment = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    message = templates.message(args.campaign, args.message).source
    body = environment.from_string(message.body)
    subject = environment.from_string(message.subject)
    layout = environment.from_string((source_dir / "master.html").read_text(encoding="utf-8"))
    tenant = config.tenant(args.tenant)
    derived = templates.tenant(tenant.template)
    strings = derived.languages[tenant.language]
    blocks = {key: Markup(f"<div>{key}</div>") for key in templates.blocks}
    fixed = {
        "tenant": {"code": tenant.code, "name": tenant.name, "sender": tenant.sender.name},
        "company": {"name": config.company.name, "website": config.company.website or ""},
        "language": tenant.language,
        "content": blocks.__getitem__,
        "logo": derived.logo,
        "accent_color": derived.accent_color,
        "strings": strings,
        "imprint_lines": strings.imprint.strip().splitlines(),
        "unsubscribe_url": "https://go.example/u/x",
        "view_url": "https://go.example/v/x",
        "pixel_url": "https://go.example/o/x.gif",
    }
    started = time.perf_counter()
    for row, contact in zip(rows, contacts, strict=True):
        context = {**fixed, "contact": contact, "campaign_id": row["campaign_id"]}
        layout.render(
            **context,
            subject=subject.render(context),
            salutation=f"Guten Tag {contact['last_name']},",
            body=Markup(body.render(context)),
        )
    return (time.perf_counter() - started) / len(rows)


def _row(args: argparse.Namespace, index: int) -> dict[str, Any]:
    return {
        "outbox_id": 100_000 + index,
        "kind": "campaign_mail",
        "campaign_id": args.campaign,
        "step_id": "step",
        "contact_id": f"C-{index}",
        "tenant_code": args.tenant,
        "message": args.message,
        "content": [],
        "category": "marketing",
        "recipient_email": None,
    }


def _contact(index: int, language: str) -> dict[str, Any]:
    return {
        "contact_id": f"C-{index}",
        "email": f"person{index}@example.org",
        "salutation": SALUTATIONS[index % len(SALUTATIONS)],
        "first_name": FIRST_NAMES[index % len(FIRST_NAMES)],
        "last_name": LAST_NAMES[(index // 3) % len(LAST_NAMES)],
        "language": language,
        "account_name": f"Firma {index}",
    }


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale = float(os.environ.get("LEADFLOW_BENCH_SCALE", "1"))
    parser.add_argument("--recipients", type=int, default=max(2, int(10_000 * scale)))
    parser.add_argument("--campaign", default="upsell_hs3000")
    parser.add_argument("--message", default="hs2000_vs_hs3000")
    parser.add_argument("--tenant", default="hq")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
