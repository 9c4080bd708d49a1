"""The served process: SIGTERM loses no accepted event, kill -9 at most the bound."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from tests.leadflow.tracking.data import BROWSER, click_token, count
from tests.leadflow.tracking.serving import Served

BATCH = 20


def test_kill_9_loses_at_most_the_unflushed_buffer(warehouse_url, warehouse, mails):
    served = Served(
        warehouse_url,
        {
            "LEADFLOW_TRACKING_BATCH_SIZE": str(BATCH),
            "LEADFLOW_TRACKING_FLUSH_INTERVAL_SECONDS": "0.2",
        },
    )
    path = f"/c/{click_token(mails.product_link)}"
    accepted = 0
    with httpx.Client(base_url=served.url, headers={"User-Agent": BROWSER}) as client:
        for _ in range(300):
            accepted += client.get(path).status_code == 302
    served.stop(signal.SIGKILL)
    assert accepted == 300
    # The documented bound: 2 × batch_size (a batch in flight and a full buffer).
    assert accepted - 2 * BATCH <= count(warehouse, "raw.events") <= accepted


def test_sigterm_during_load_loses_no_accepted_event(warehouse_url, warehouse, mails):
    # A long interval and a large batch: nearly everything is still buffered at SIGTERM.
    served = Served(
        warehouse_url,
        {
            "LEADFLOW_TRACKING_BATCH_SIZE": "100000",
            "LEADFLOW_TRACKING_FLUSH_INTERVAL_SECONDS": "60",
        },
    )
    path = f"/c/{click_token(mails.pricing_link)}"
    accepted = [0] * 4
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=served.url, headers={"User-Agent": BROWSER}) as client:
            while not stop.is_set():
                try:
                    accepted[worker] += client.get(path, timeout=10).status_code == 302
                except httpx.TransportError:
                    return  # the server stopped listening

    workers = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    # uvicorn shuts down gracefully, then re-raises the signal: the exit status is -SIGTERM.
    assert served.stop(signal.SIGTERM) == -signal.SIGTERM
    stop.set()
    for worker in workers:
        worker.join()
    answered = sum(accepted)
    assert answered > 100
    # Every answered click is in the warehouse; at most the 4 requests in progress when the
    # connections closed may have been recorded without their answer arriving.
    assert answered <= count(warehouse, "raw.events") <= answered + 4
