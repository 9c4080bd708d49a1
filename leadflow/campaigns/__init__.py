"""Campaign journeys (SPEC §2.6): enrol contacts on a trigger, advance them step by step.

    from leadflow.campaigns import run_campaign, status, simulate, now_for
    report = run_campaign(engine, config, "onboarding", now_for(as_of))   # enrol + advance
    print(status(engine, config, "onboarding", now).describe())

The engine is set-based SQL over the warehouse: `enrol` (enrol.py) starts journeys for the
trigger's occurrences, `advance` (advance.py) ends journeys that must stop (endings.py) and
runs every due step for all its journeys at once (steps.py), writing the mails it produces
to `ops.outbox` at the times the send-time planner allows (timing.py: send windows,
frequency cap). Every call takes `now`, the run's moment; filters see `as_of_for(now)`
(clock.py). State lives in `ops` (migration 0005; state.py).
"""

from leadflow.campaigns.advance import AdvanceReport, advance
from leadflow.campaigns.clock import as_of_for, now_for
from leadflow.campaigns.enrol import TRIGGER_LOOKBACK, EnrolReport, enrol
from leadflow.campaigns.report import (
    PathCount,
    SimulatedDay,
    SimulationReport,
    StatusReport,
    StepCount,
    simulate,
    status,
)
from leadflow.campaigns.run import RunReport, run_campaign
from leadflow.campaigns.state import CampaignError, UnknownCampaignError, campaign_for
from leadflow.campaigns.timing import next_window_start, plan_send_times

__all__ = [
    "TRIGGER_LOOKBACK",
    "AdvanceReport",
    "CampaignError",
    "EnrolReport",
    "PathCount",
    "RunReport",
    "SimulatedDay",
    "SimulationReport",
    "StatusReport",
    "StepCount",
    "UnknownCampaignError",
    "advance",
    "as_of_for",
    "campaign_for",
    "enrol",
    "next_window_start",
    "now_for",
    "plan_send_times",
    "run_campaign",
    "simulate",
    "status",
]
