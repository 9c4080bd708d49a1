"""What the campaign DAGs (dags/campaigns.py) need: their campaign files and their tasks.

Reading a campaign at parse time
    `read_campaign(path)` validates ONE campaign file: its pydantic model (`Campaign`), its
    step graph (`flow_issues`) and that its id is its file name. The references to other
    files (segments, tenants, products, templates) are not checked here: that needs the
    whole configuration, which every task loads (and refuses) at run time anyway.

    The configuration loader reads YAML with ruamel's round-trip loader so every error can
    name its line; in pure Python that costs ~16 ms per campaign file, 3 s for 200
    campaigns. Parsing takes the fast road first: libyaml (PyYAML's C parser) with the
    YAML 1.2 rules the loader follows (`on`/`yes`/`no` are text, `010` is ten). A scalar
    whose reading could differ between the two (octal, hex, `1_000`, `1e3`, times, merge
    keys, tags) is not guessed: it makes the fast road fail. Whenever the fast road fails
    for whatever reason, the file is read again the loader's way, which either accepts it
    or produces the loader's error message (`campaigns/x.yaml:LINE: campaign 'x': ...`).
    So the fast road changes the speed, never the verdict.

The tasks
    Thin: arguments in, one call into `leadflow.campaigns`, its report printed. Every task
    of a run uses the same moment (`now_from_context`), so a retry or a re-run repeats the
    same run and changes nothing further. A LeadflowError (bad config or data) fails the
    task at once; only an unreachable warehouse is retried.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import ValidationError

from leadflow.config.campaigns import Campaign, flow_issues
from leadflow.config.issues import Document, Issue, format_issues, issues_from_validation_error
from leadflow.config.loader import read_yaml, to_plain
from leadflow.errors import ConfigError
from leadflow_airflow.runs import fail_fast_on_user_errors

# --- reading one campaign file ------------------------------------------------------------


class NotSure(Exception):
    """The fast reader met something it does not read exactly like the loader."""


# Resolved to a tag nothing constructs, so the fast reader stops and the loader reads.
_UNSURE_TAG = "tag:leadflow,2026:unsure"


class _FastYamlLoader(yaml.CSafeLoader):
    """libyaml resolving plain scalars by YAML 1.2 (ruamel's rules, as the loader does)."""

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {}

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str:
        # Most scalars of a campaign (keys, ids, words) start with a character no implicit
        # type starts with, and quoted ones are text anyway: text at once, without the
        # regular expressions (PyYAML tries them in Python for every scalar). The same
        # verdict as the full resolver: this loader has no path resolvers.
        if kind is yaml.ScalarNode and (
            not implicit[0] or (value and value[0] not in _TYPED_FIRST_CHARACTERS)
        ):
            return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


# ruamel.yaml's YAML 1.2 implicit types, in its order (ruamel/yaml/resolver.py).
_YAML_12_RESOLVERS: list[tuple[str, str, str]] = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (
        "tag:yaml.org,2002:float",
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        "-+0123456789.",
    ),
    (
        "tag:yaml.org,2002:int",
        r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+)$",
        "-+0123456789",
    ),
    (_UNSURE_TAG, r"^<<$", "<"),  # merge keys
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    (
        "tag:yaml.org,2002:timestamp",
        r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
        (?:[Tt]|[\ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
        (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
        "0123456789",
    ),
]
for _tag, _pattern, _first in _YAML_12_RESOLVERS:
    _FastYamlLoader.add_implicit_resolver(_tag, re.compile(_pattern, re.X), list(_first))
# `key:` with no value is null, as in the loader.
_FastYamlLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^$"), [""])
_TYPED_FIRST_CHARACTERS = frozenset(_FastYamlLoader.yaml_implicit_resolvers) - {""}

# The spellings both readers turn into the same value; anything else of these types (octal,
# hex, `1_000`, `1e3`, `.inf`, date-times, `!!bool yes`) is left to the loader.
_SURE_SPELLINGS = {
    "tag:yaml.org,2002:bool": r"^(?:true|True|TRUE|false|False|FALSE)$",
    "tag:yaml.org,2002:int": r"^[-+]?(?:0|[1-9][0-9]*)$",
    "tag:yaml.org,2002:float": r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)$",
    "tag:yaml.org,2002:timestamp": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
}


def _refuse(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise NotSure(f"{node.tag} at {node.start_mark}")


def _only_sure(tag: str, pattern: str) -> Any:
    construct = yaml.SafeLoader.yaml_constructors[tag]
    sure = re.compile(pattern)

    def constructor(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode) or not sure.match(node.value):
            _refuse(loader, node)
        return construct(loader, node)

    return constructor


for _tag, _pattern in _SURE_SPELLINGS.items():
    _FastYamlLoader.add_constructor(_tag, _only_sure(_tag, _pattern))
for _tag in ("binary", "set", "omap", "pairs"):
    _FastYamlLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)
_FastYamlLoader.add_constructor(_UNSURE_TAG, _refuse)
_FastYamlLoader.add_constructor(None, _refuse)  # any other tag: `!=`, `!!python/...`


def read_campaign(path: Path) -> Campaign:
    """The campaign in `path`, validated on its own; ConfigError naming file and line if not."""
    try:
        return _read_fast(path)
    except Exception:  # any doubt at all: the loader's way decides
        return _read_thoroughly(path)


def read_yaml_fast(path: Path) -> Any:
    """The data in `path` read by libyaml as the loader would; NotSure where it might differ."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_FastYamlLoader)


def _read_fast(path: Path) -> Campaign:
    plain, problems = to_plain(read_yaml_fast(path))
    if problems or not isinstance(plain, dict):
        raise NotSure(str(problems))
    campaign = Campaign.model_validate(plain)
    if campaign.id != path.stem or flow_issues(campaign):
        raise NotSure("invalid")
    return campaign


def _read_thoroughly(path: Path) -> Campaign:
    """The loader's reading: the same verdict as `leadflow config validate` for this file."""
    data, issues = read_yaml(path)
    documents = {path: Document(path, "campaign", data)}
    campaign = None
    if not issues:
        plain, problems = to_plain(data if data is not None else {})
        issues += [Issue(path, loc, message) for loc, message in problems]
        if not isinstance(plain, dict):
            issues.append(Issue(path, (), "expected a mapping of keys at the top level"))
        elif not problems:
            try:
                campaign = Campaign.model_validate(plain)
            except ValidationError as error:
                issues += issues_from_validation_error(path, error)
    if campaign is not None:
        if campaign.id != path.stem:
            message = f"campaign id {campaign.id!r} must match the file name {path.name}"
            issues.append(Issue(path, ("id",), message))
        issues += [Issue(path, loc, message) for loc, message in flow_issues(campaign)]
    if issues or campaign is None:
        lines = format_issues(issues, documents)
        raise ConfigError(f"invalid campaign {path}:\n" + "\n".join(lines))
    return campaign


# --- the run's moment -----------------------------------------------------------------------


def now_from_context(context: Any) -> dt.datetime:
    """The moment of the run, in UTC: the end of its data interval, else its run_after.

    A scheduled run's data interval ends at its cron time (a trigger timetable has no
    interval length), so a late or repeated run still runs for the moment it was due.
    Asset-triggered runs (after the nightly) have no data interval: they run at the moment
    the run was queued for.
    """
    dag_run = context["dag_run"]
    moment = getattr(dag_run, "data_interval_end", None) or dag_run.run_after
    utc = moment.astimezone(dt.UTC)
    # A plain datetime (Airflow hands out pendulum's subclass): what the engine expects.
    return dt.datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, dt.UTC
    )


# --- the tasks ------------------------------------------------------------------------------


def _engine_and_config() -> tuple[Any, Any]:
    from leadflow import paths
    from leadflow.config import load_config
    from leadflow.warehouse.engine import get_engine

    return get_engine(), load_config(paths.config_dir())


def enrol_contacts(campaign_id: str, **context: Any) -> Any:
    """Enrol the contacts the campaign's trigger brings in at the run's moment."""
    from leadflow.campaigns import enrol

    now = now_from_context(context)
    with fail_fast_on_user_errors():
        engine, config = _engine_and_config()
        report = enrol(engine, config, campaign_id, now)
    print(f"{campaign_id} at {now.isoformat()}: {_describe(report)}")
    return _xcom(report)


def advance_step(campaign_id: str, step_id: str, **context: Any) -> Any:
    """Advance the journeys due at one step (the step tasks mirror the journey's graph)."""
    from leadflow.campaigns import advance

    now = now_from_context(context)
    with fail_fast_on_user_errors():
        engine, config = _engine_and_config()
        report = advance(engine, config, campaign_id, now, step_id=step_id)
    print(f"{campaign_id}.{step_id} at {now.isoformat()}: {_describe(report)}")
    return _xcom(report)


def hand_off_sends(campaign_id: str, **context: Any) -> list[dict[str, int]]:
    """Plan the dispatch of the campaign's due mails: one mapped `dispatch` task per worker.

    Nothing is handed on unless the latest nightly run succeeded (its quality gates passed):
    then the task fails, without retries, and every mail stays in the outbox.
    """
    from leadflow.campaigns.handoff import due_sends
    from leadflow.messaging.gate import require_clean_marts

    now = now_from_context(context)
    with fail_fast_on_user_errors():
        engine, config = _engine_and_config()
        require_clean_marts(engine)
        due = due_sends(engine, campaign_id, now)
    print(due.describe())
    delivery = config.company.delivery
    workers = min(delivery.concurrency, math.ceil(due.due / delivery.batch_size))
    return [{"worker": worker, "workers": workers} for worker in range(workers)]


def dispatch_mails(campaign_id: str, worker: int, workers: int, **context: Any) -> dict[str, Any]:
    """One dispatcher worker for the campaign's due mails (the mapped tasks share the work:
    rows are claimed with SKIP LOCKED, so no mail goes out twice)."""
    from leadflow.messaging.cli import make_composer
    from leadflow.messaging.delivery import smtp_server_from_env
    from leadflow.messaging.dispatch import dispatch

    now = now_from_context(context)
    with fail_fast_on_user_errors():
        engine, config = _engine_and_config()
        delivery = config.company.delivery
        smtp_server_from_env(config)  # a clear error when the SMTP URL is not set
        report = dispatch(
            engine,
            config,
            now,
            compose=make_composer(config, engine),
            smtp_url=os.environ[delivery.smtp_url_env].strip(),
            concurrency=1,
            # The configured rate is for all workers together.
            rate_per_minute=delivery.rate_limit_per_minute / workers,
            batch_size=delivery.batch_size,
            dry_run=delivery.dry_run,
            campaign_id=campaign_id,
        )
    print(f"{campaign_id} worker {worker + 1}/{workers}: {report.describe()}")
    return report.counts()


def _describe(report: Any) -> str:
    describe = getattr(report, "describe", None)
    return describe() if callable(describe) else repr(report)


def _xcom(report: Any) -> Any:
    """What the task returns as its XCom: something JSON can hold, or nothing."""
    if report is None or isinstance(report, int | float | str | bool | dict | list):
        return report
    return _describe(report)


__all__ = [
    "NotSure",
    "advance_step",
    "dispatch_mails",
    "enrol_contacts",
    "hand_off_sends",
    "now_from_context",
    "read_campaign",
    "read_yaml_fast",
]
