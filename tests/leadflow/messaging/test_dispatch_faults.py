"""Fault test: a dispatcher process killed with SIGKILL at random moments, then resumed.

Lost must be 0 (every row ends `sent` or `ambiguous`), every `sent` row's Message-ID reached
the SMTP server, and copies received twice are at most the rows flagged `ambiguous`. A worker
marks its rows `sending` in groups of GROUP_SIZE, so one kill leaves at most that many rows
per worker ambiguous.

Sizes are parameters: LEADFLOW_FAULT_MESSAGES (default 2,000) and LEADFLOW_FAULT_KILLS
(default 10); LEADFLOW_FAULT_SEED fixes the kill moments. The full size of the issue is
LEADFLOW_FAULT_MESSAGES=10000 LEADFLOW_FAULT_KILLS=20.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

from leadflow.paths import PROJECT_ROOT
from tests.leadflow.messaging.dispatch_data import (
    NOW,
    add_contacts,
    add_outbox,
    create_pool,
    outbox,
    scripted_smtp,
)

MESSAGES = int(os.environ.get("LEADFLOW_FAULT_MESSAGES", "2000"))
KILLS = int(os.environ.get("LEADFLOW_FAULT_KILLS", "10"))
SEED = int(os.environ.get("LEADFLOW_FAULT_SEED", str(random.randrange(10**6))))
CONCURRENCY = 2
GROUP_SIZE = 20
HOUR = dt.timedelta(hours=1)

# One dispatch run in its own process: python -c DISPATCHER DB_URL SMTP_URL NOW
DISPATCHER = textwrap.dedent(
    f"""
    import datetime as dt, sys
    import sqlalchemy as sa
    from leadflow.messaging.dispatch import dispatch
    from tests.leadflow.messaging.dispatch_data import (
        RELATIONS, compose, example_config, unsubscribe_url_for)
    config = example_config()
    engine = sa.create_engine(sys.argv[1])
    now = dt.datetime.fromisoformat(sys.argv[3])
    print("started", flush=True)
    report = dispatch(engine, config, now, compose=compose, smtp_url=sys.argv[2],
                      concurrency={CONCURRENCY}, rate_per_minute=None, batch_size=50,
                      group_size={GROUP_SIZE}, lease=dt.timedelta(minutes=10),
                      unsubscribe_url=unsubscribe_url_for(config), relations=RELATIONS)
    print(report.describe(), flush=True)
    """
)


def start_dispatcher(database_url: str, smtp_url: str, now: dt.datetime) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", DISPATCHER, database_url, smtp_url, now.isoformat()],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_killed_dispatchers_lose_nothing_and_never_send_twice(warehouse, warehouse_url):
    print(f"fault test: {MESSAGES} messages, {KILLS} kills, seed {SEED}")
    chance = random.Random(SEED)
    create_pool(warehouse)
    contacts = [{"contact_id": f"c{number:05d}"} for number in range(MESSAGES)]
    add_contacts(warehouse, contacts)
    add_outbox(warehouse, contacts)
    database_url = warehouse_url.render_as_string(hide_password=False)

    progress = []
    with scripted_smtp() as (smtp_url, server):
        for kill in range(KILLS):
            # Each run an hour after the last: the killed run's leases (10 minutes) expired.
            process = start_dispatcher(database_url, smtp_url, NOW + kill * HOUR)
            assert process.stdout.readline().strip() == "started"
            time.sleep(chance.uniform(0.05, 0.6))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            # Mails the server took so far: a run killed inside its first group has sent
            # some without recording any as `sent` yet.
            progress.append(len(server.received))
        final = start_dispatcher(database_url, smtp_url, NOW + KILLS * HOUR)
        output, _ = final.communicate(timeout=600)
        assert final.returncode == 0, output
        time.sleep(0.2)  # the server's last handler calls
        received = server.message_ids()

    print("received after each kill:", progress, "| resume:", output.splitlines()[-1])
    assert progress[-1] < MESSAGES  # the kills interrupted the send
    assert (
        sum(1 for before, after in zip([0, *progress], progress, strict=False) if after > before)
        >= KILLS // 2
    )

    rows = outbox(warehouse, "outbox_id, status, message_id")
    states = {status for _id, status, _message_id in rows}
    assert states <= {"sent", "ambiguous"}, states  # lost = 0
    sent_ids = [message_id for _id, status, message_id in rows if status == "sent"]
    ambiguous = [message_id for _id, status, message_id in rows if status == "ambiguous"]
    assert len(sent_ids) + len(ambiguous) == MESSAGES
    # Every row recorded as sent did reach the server, exactly once.
    assert all(received[message_id] == 1 for message_id in sent_ids)
    duplicates = sum(count - 1 for count in received.values())
    print(f"sent {len(sent_ids)}, ambiguous {len(ambiguous)}, received twice {duplicates}")
    assert duplicates <= len(ambiguous)
    # At most one group of rows marked `sending` per worker and kill.
    assert len(ambiguous) <= KILLS * CONCURRENCY * GROUP_SIZE
    # Nothing reached the server that the outbox does not know.
    assert set(received) <= {message_id for _id, _status, message_id in rows}
