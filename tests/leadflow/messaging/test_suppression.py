"""The suppression list on a real warehouse: normalisation, scopes, what a re-subscribe clears."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from leadflow.messaging.suppression import (
    SuppressionError,
    applies_to,
    forget_mail_state,
    is_suppressed,
    normalize_email,
    reasons,
    resubscribe,
    suppress,
)


def test_addresses_are_normalised_and_a_repeat_keeps_the_first_row(warehouse):
    with warehouse.begin() as connection:
        assert suppress(
            connection, " Anna@Example.COM ", "unsubscribe", "tracking", detail={"n": 1}
        )
        assert not suppress(connection, "anna@example.com", "unsubscribe", "preferences")
        assert [tuple(r) for r in connection.execute(sa.text(
            "select email_normalized, scope, reason, source, detail->>'n' from ops.suppressions"
        ))] == [("anna@example.com", "all", "unsubscribe", "tracking", "1")]  # fmt: skip
    assert normalize_email("\tB@X.Example \n") == "b@x.example"


def test_a_resubscribe_removes_only_the_unsubscribe(warehouse):
    with warehouse.begin() as connection:
        for reason in ("unsubscribe", "hard_bounce", "complaint"):
            suppress(connection, "anna@example.com", reason, "test")
        suppress(connection, "bert@example.com", "unsubscribe", "test")

        assert resubscribe(connection, "ANNA@example.com") == 1
        assert resubscribe(connection, "bert@example.com") == 1
        assert resubscribe(connection, "bert@example.com") == 0

        assert reasons(connection, "anna@example.com") == ["complaint", "hard_bounce"]
        assert is_suppressed(connection, "anna@example.com")
        assert not is_suppressed(connection, "bert@example.com")


def test_a_tenant_scope_applies_to_that_tenant_only(warehouse):
    with warehouse.begin() as connection:
        suppress(connection, "fleur@example.com", "unsubscribe", "test", scope="fr")
        suppress(connection, "gina@example.com", "hard_bounce", "test")

        assert is_suppressed(connection, "fleur@example.com", "fr")
        assert not is_suppressed(connection, "fleur@example.com", "it")
        assert not is_suppressed(connection, "fleur@example.com")
        assert is_suppressed(connection, "gina@example.com", "it")  # scope all: every tenant

        assert resubscribe(connection, "fleur@example.com") == 0  # other scope: untouched
        assert resubscribe(connection, "fleur@example.com", scope="fr") == 1
        assert not is_suppressed(connection, "fleur@example.com", "fr")


def test_applies_to_checks_a_whole_batch_in_one_statement(warehouse):
    with warehouse.begin() as connection:
        suppress(connection, "fleur@example.com", "unsubscribe", "test", scope="fr")
        suppress(connection, "gina@example.com", "complaint", "test")
        batch = sa.values(
            sa.column("email", sa.Text()), sa.column("tenant_code", sa.Text()), name="batch"
        ).data([
            (" FLEUR@example.com", "fr"),
            ("fleur@example.com", "it"),
            ("gina@example.com", "hq"),
            ("hans@example.com", "hq"),
        ])  # fmt: skip
        query = sa.select(batch.c.email, batch.c.tenant_code).where(
            applies_to(batch.c.email, batch.c.tenant_code)
        )
        assert sorted(tuple(r) for r in connection.execute(query)) == [
            (" FLEUR@example.com", "fr"),
            ("gina@example.com", "hq"),
        ]


def test_unknown_reasons_and_empty_addresses_are_refused(warehouse):
    with warehouse.begin() as connection:
        with pytest.raises(SuppressionError, match="unknown suppression reason 'bounced'"):
            suppress(connection, "a@example.com", "bounced", "test")
        with pytest.raises(SuppressionError, match="empty e-mail address"):
            suppress(connection, "  ", "manual", "test")


MAIL_STATE = (
    "ops.suppressions",
    "ops.bounces",
    "ops.bounce_messages",
    "ops.links",
    "ops.consents",
    "ops.opt_in_requests",
    "ops.visitors",
)


def test_forgetting_the_mail_state_of_a_replaced_pool(warehouse):
    statements = [
        "insert into ops.suppressions (email_normalized, reason, source) "
        "values ('a@example.com', 'unsubscribe', 'one_click')",
        "insert into ops.bounce_messages (message_sha256, source, classified_as) "
        "values ('m1', 'maildir', 'hard_bounce')",
        "insert into ops.bounces (message_sha256, email_normalized, kind, received_at) "
        "values ('m1', 'a@example.com', 'hard', now())",
        "insert into ops.links (link_id, url) values ('l1', 'https://x.example/')",
        "insert into ops.opt_in_requests (token_sha256, contact_id, email, consent_text_version, "
        "source, expires_at) "
        "values ('t1', 'C-1', 'a@example.com', 'v1', 'ebook', now() + interval '7 days')",
        "insert into ops.consents (contact_id, email, consented_at, consent_text_version, source, "
        "request_id) select 'C-1', 'a@example.com', now(), 'v1', 'ebook', request_id "
        "from ops.opt_in_requests",
        "insert into ops.visitors (visitor_id, contact_id, linked_by) values ('v1', 'C-1', 'form')",
        "insert into ops.translation_memory (source_sha256, source_language, target_language, "
        "formality, glossary_version, source_text, translated_text, provider) "
        "values ('s1', 'de', 'fr', 'default', 'g1', 'Hallo', 'Bonjour', 'deepl')",
    ]
    with warehouse.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)

    forget_mail_state(warehouse)

    with warehouse.connect() as connection:
        counts = {
            table: connection.exec_driver_sql(f"select count(*) from {table}").scalar()
            for table in (*MAIL_STATE, "ops.translation_memory")
        }
    assert counts == {**dict.fromkeys(MAIL_STATE, 0), "ops.translation_memory": 1}
