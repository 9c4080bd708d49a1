"""The tracking and capture service (SPEC §2.9): a FastAPI app served by uvicorn.

`app.create_app` builds it; `tracking` holds the mail routes (open pixel, click redirect,
unsubscribe, preferences), `capture` the lead-capture routes, `writer` the batched event
writer, `machine` the machine-traffic rules and `settings` the one settings class.
"""
