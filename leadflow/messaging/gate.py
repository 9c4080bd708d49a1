"""No send without clean marts: mail goes out only after a successful nightly run.

Campaigns choose recipients from the marts, and the nightly run publishes them only when
their quality gates passed (leadflow.nightly, SPEC §2.14). If the latest nightly run failed
— a critical expectation, a dbt test, anything — or is still running, the marts may be
wrong or half-built, so nothing is sent: the mails stay in the outbox and go out with the
first dispatch after a nightly run has succeeded. With no nightly run at all there is
nothing to trust yet either.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from leadflow.errors import LeadflowError
from leadflow.nightly import KIND as NIGHTLY


class SendingBlocked(LeadflowError):
    """The latest nightly run did not succeed: nothing may be sent."""


_LATEST_RUN = sa.text(
    "select run_id, as_of, status, detail ->> 'error' as error from ops.runs "
    "where kind = :kind order by run_id desc limit 1"
)


def require_clean_marts(engine: Engine) -> None:
    """Raise SendingBlocked unless the latest nightly run succeeded."""
    with engine.connect() as connection:
        latest = connection.execute(_LATEST_RUN, {"kind": NIGHTLY}).first()
    if latest is None:
        raise SendingBlocked(
            "no nightly run yet: nothing is sent until the marts have been built and have "
            "passed their quality gates (`leadflow build --as-of DATE`)"
        )
    if latest.status != "success":
        why = f": {latest.error}" if latest.error else ""
        raise SendingBlocked(
            f"the latest nightly run (run {latest.run_id}, as_of {latest.as_of}) is "
            f"{latest.status}{why}; nothing is sent until a nightly run succeeds"
        )
