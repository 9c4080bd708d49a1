"""Browsable validation results: `<leadflow home>/quality/{index,raw,marts}.html` and `.json`.

Our own small static pages rather than GX Data Docs: the gate runs on an ephemeral GX
context (nothing to build docs from), and one self-contained page per stage, with the
latest run's every expectation and its outcome, is what a data engineer needs to see why a
run stopped. History lives in `ops.quality_results`; the JSON is for scripts.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

from leadflow import paths

if TYPE_CHECKING:
    from leadflow.quality.gate import GateResult, Outcome

STAGES = ("raw", "marts")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .35rem .6rem; text-align: left;
         vertical-align: top; font-size: .9rem; }
th { background: #f4f4f4; }
.ok { color: #176117; } .failed { color: #a11; font-weight: bold; } .warning { color: #a60; }
code { font-size: .85rem; }
"""


def report_dir() -> Path:
    return paths.home() / "quality"


def write_report(result: GateResult, directory: Path | None = None) -> Path:
    """Write `<stage>.html` and `<stage>.json`, refresh `index.html`; returns the HTML page."""
    directory = directory or report_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{result.stage}.json").write_text(json.dumps(result.to_dict(), indent=2))
    page = directory / f"{result.stage}.html"
    page.write_text(_stage_page(result))
    (directory / "index.html").write_text(_index_page(directory))
    return page


def _status(outcome: Outcome) -> tuple[str, str]:
    if outcome.success:
        return "ok", "passed"
    if outcome.severity == "warning":
        return "warning", "warning"
    return "failed", "FAILED"


def _row(outcome: Outcome) -> str:
    css, label = _status(outcome)
    cells = [
        html.escape(outcome.table),
        f"<code>{html.escape(outcome.expectation)}</code>",
        outcome.severity,
        f'<span class="{css}">{label}</span>',
        html.escape(outcome.detail()),
        html.escape(", ".join(str(e) for e in outcome.examples)),
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _stage_page(result: GateResult) -> str:
    verdict = "passed" if result.success else "FAILED"
    css = "ok" if result.success else "failed"
    rows = "\n".join(_row(o) for o in result.outcomes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>leadflow quality gate: {result.stage}</title><style>{STYLE}</style></head>
<body>
<p><a href="index.html">all gates</a></p>
<h1>Quality gate <code>{result.stage}</code>: <span class="{css}">{verdict}</span></h1>
<p>Checked at {result.checked_at:%Y-%m-%d %H:%M:%S} UTC &middot;
{len(result.outcomes)} expectations &middot; {len(result.failures)} critical failure(s)
&middot; {len(result.warnings)} warning(s)</p>
<table>
<tr><th>table</th><th>expectation</th><th>severity</th><th>status</th><th>observed</th>
<th>examples</th></tr>
{rows}
</table>
</body></html>
"""


def _index_page(directory: Path) -> str:
    items = []
    for stage in STAGES:
        summary = directory / f"{stage}.json"
        if not summary.exists():
            items.append(f"<li>{stage}: not run yet</li>")
            continue
        data = json.loads(summary.read_text())
        verdict = "passed" if data["success"] else "FAILED"
        css = "ok" if data["success"] else "failed"
        items.append(
            f'<li><a href="{stage}.html">{stage}</a>: <span class="{css}">{verdict}</span> '
            f"({html.escape(data['checked_at'])})</li>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>leadflow quality gates</title><style>{STYLE}</style></head>
<body><h1>leadflow quality gates</h1><p>The latest run of each gate; the full history is in
<code>ops.quality_results</code>.</p><ul>{"".join(items)}</ul></body></html>
"""
