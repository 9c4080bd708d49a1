"""Know the customer: personas, lead scores, the scoring matrix, MQLs, CLV (SPEC §2.3/§2.4/§2.13).

    from leadflow.scoring import score, explain, matrix, export_cell
    score(engine, config, as_of)          # the nightly step: snapshot, activity state, dbt
    explain(engine, "c-123", None, config)  # why a contact has its persona and scores

The computation itself is dbt (models tagged `scoring`, docs/scoring.md); this package writes
the configuration snapshot they read, keeps the incremental activity state, and reads the
results back for the CLI.
"""

from leadflow.scoring.activity import ActivityUpdate, reset_activity_state, update_activity_state
from leadflow.scoring.explain import Explanation, explain
from leadflow.scoring.matrix import Matrix, export_cell, matrix
from leadflow.scoring.pipeline import (
    SCORING_SELECTOR,
    PreparedScoring,
    ScoringResult,
    prepare_scoring,
    score,
)
from leadflow.scoring.snapshot import activity_hash, config_hash, snapshot_config

__all__ = [
    "SCORING_SELECTOR",
    "ActivityUpdate",
    "Explanation",
    "Matrix",
    "PreparedScoring",
    "ScoringResult",
    "activity_hash",
    "config_hash",
    "explain",
    "export_cell",
    "matrix",
    "prepare_scoring",
    "reset_activity_state",
    "score",
    "snapshot_config",
    "update_activity_state",
]
