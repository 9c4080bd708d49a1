"""Data-quality gates: expectation suites on raw data and marts (SPEC 2.14).

`run_gate(stage, engine)` validates, records and reports; `GateResult.raise_if_failed()`
stops the run on a failed critical expectation. The suites themselves are data, in
`leadflow.quality.suites`.
"""

from leadflow.quality.gate import GateResult, Outcome, QualityGateFailed, run_gate

__all__ = ["GateResult", "Outcome", "QualityGateFailed", "run_gate"]
