"""`dispatch_command` (wired into the CLI as `leadflow dispatch`): a clear error without an
SMTP server, before anything is claimed."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from leadflow.messaging.cli import dispatch_command
from tests.leadflow.messaging.dispatch_data import add_contacts, add_outbox, create_pool, outbox

app = typer.Typer()
app.command("dispatch")(dispatch_command)
app.command("noop")(lambda: None)  # two commands: `dispatch` stays a subcommand


def test_without_an_smtp_url_it_says_which_variable_to_set_and_claims_nothing(
    warehouse, monkeypatch
):
    create_pool(warehouse)
    add_contacts(warehouse, [{"contact_id": "anna"}])
    add_outbox(warehouse, [{"contact_id": "anna"}])
    monkeypatch.delenv("LEADFLOW_SMTP_URL", raising=False)
    result = CliRunner().invoke(app, ["dispatch", "--send"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "no SMTP server configured: set LEADFLOW_SMTP_URL" in result.output
    assert outbox(warehouse) == [(1, "pending", None)]


def test_a_bad_smtp_url_is_named(warehouse, monkeypatch):
    monkeypatch.setenv("LEADFLOW_SMTP_URL", "http://user:secret@mail.example")
    result = CliRunner().invoke(app, ["dispatch", "--send"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "smtp:// or smtps://, got 'http://user:***@mail.example'" in result.output
    assert "secret" not in result.output
