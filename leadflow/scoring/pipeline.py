"""The scoring step of the nightly run: snapshot → activity state → dbt build of the scoring models.

    score(engine, config, as_of)              # incremental activity scoring where valid
    score(engine, config, as_of, full=True)   # recompute the activity state from every event

The staging views (and the other models the scoring models read, e.g.
int_contacts_orders_aggregated) must have been built before: the nightly run builds
`--exclude tag:scoring+` first, then calls this, then builds what depends on the scores
(`--select tag:scoring+ --exclude tag:scoring`, e.g. segments). See docs/scoring.md.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from leadflow.config import Config
from leadflow.scoring.activity import ActivityUpdate, update_activity_state
from leadflow.scoring.snapshot import config_hash, snapshot_config

# Every model that computes personas, scores, the matrix or CLV, and dim_contacts.
SCORING_SELECTOR = "tag:scoring"


@dataclass(frozen=True)
class PreparedScoring:
    """What the scoring models need in ops before dbt builds them: snapshot and activity state."""

    as_of: dt.date
    config_hash: str
    activity: ActivityUpdate
    snapshot_seconds: float

    def describe(self) -> str:
        return "\n".join(
            [
                f"configuration snapshot {self.config_hash[:12]} ({self.snapshot_seconds:.1f} s)",
                self.activity.describe(),
            ]
        )


@dataclass(frozen=True)
class ScoringResult:
    as_of: dt.date
    config_hash: str
    activity: ActivityUpdate
    snapshot_seconds: float
    dbt_seconds: float

    @property
    def seconds(self) -> float:
        return self.snapshot_seconds + self.activity.seconds + self.dbt_seconds

    def describe(self) -> str:
        return "\n".join(
            [
                f"configuration snapshot {self.config_hash[:12]} ({self.snapshot_seconds:.1f} s)",
                self.activity.describe(),
                f"dbt build {SCORING_SELECTOR}: ok ({self.dbt_seconds:.1f} s)",
            ]
        )


def prepare_scoring(
    engine: Engine, config: Config, as_of: dt.date, *, full: bool = False
) -> PreparedScoring:
    """Snapshot `config` into ops and bring the activity state up to `as_of`'s cut-off.

    The part of `score` before dbt: an Airflow DAG that builds the scoring models with Cosmos
    runs this as a task, then `--select tag:scoring`.
    """
    started = time.monotonic()
    snapshot_config(engine, config)
    snapshot_seconds = time.monotonic() - started
    activity = update_activity_state(engine, config, as_of, full=full)
    return PreparedScoring(as_of, config_hash(config), activity, snapshot_seconds)


def score(
    engine: Engine,
    config: Config,
    as_of: dt.date,
    *,
    full: bool = False,
    select: str = SCORING_SELECTOR,
) -> ScoringResult:
    """Snapshot `config`, update the activity state for `as_of`, build the scoring models.

    `full=True` rebuilds the activity state from every event and the incremental scoring
    models from scratch (dbt --full-refresh); otherwise the state is updated incrementally
    when still valid (see leadflow.scoring.activity) and the persona matches and profile
    scores are recomputed only for contacts whose inputs changed. Raises LeadflowError
    (naming the failed dbt nodes) when the build or one of its tests fails.
    """
    from leadflow.transform import dbt  # imports dbt: only callers that build pay for it

    prepared = prepare_scoring(engine, config, as_of, full=full)
    started = time.monotonic()
    dbt.build(as_of, select=select, full_refresh=full)
    return ScoringResult(
        as_of=as_of,
        config_hash=prepared.config_hash,
        activity=prepared.activity,
        snapshot_seconds=prepared.snapshot_seconds,
        dbt_seconds=time.monotonic() - started,
    )
