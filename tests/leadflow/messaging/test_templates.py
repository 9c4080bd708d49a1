"""Loading and checking templates and content blocks; the config check for content keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from leadflow.config import load_config
from leadflow.errors import ConfigError
from leadflow.messaging.templates import (
    TemplateError,
    Templates,
    content_references,
    html_environment,
)
from tests.leadflow.messaging.render_helpers import INCLUDE, copy_of_templates, shipped_config


@pytest.fixture(scope="module")
def config():
    return shipped_config()


def test_the_shipped_templates_load(config):
    templates = Templates.load(config)
    assert sorted(templates.tenants) == ["es", "fr", "hq", "it"]
    assert len(templates.messages) == 36  # every send and notify_owner message of 7 campaigns
    assert len(templates.blocks) == 28
    assert sorted(templates.tenants["hq"].languages) == ["de", "en"]


def test_every_referenced_block_is_used_by_its_message(config):
    """What a step lists in send.content is what its message shows."""
    templates = Templates.load(config)
    for campaign in config.campaigns.values():
        for step in campaign.steps:
            send = getattr(step, "send", None)
            if send is None:
                continue
            body = templates.message(campaign.id, send.message).source.body
            assert set(send.content) <= content_references(templates.html, body), (
                campaign.id,
                step.id,
            )


def test_content_references_reads_literal_keys():
    environment = html_environment()
    source = '{{ content("a") }}{% if x %}{{ content("b") }}{% endif %}{{ content(name) }}'
    assert content_references(environment, source) == {"a", "b"}


def test_unknown_block_in_a_message_names_campaign_step_and_key(config, tmp_path):
    edited = copy_of_templates(config, tmp_path)
    path = tmp_path / "templates" / "messages" / "upsell_hs3000" / "care_tips.yaml"
    path.write_text("subject: Pflege\nbody: '{{ content(\"no_such_block\") }}'\n")
    with pytest.raises(TemplateError) as caught:
        Templates.load(edited)
    message = str(caught.value)
    assert "(1 problem)" in message
    assert f"{path}: body: campaign 'upsell_hs3000', step 'care_tips': " in message
    assert "unknown content block 'no_such_block'" in message


def test_every_problem_is_reported_at_once(config, tmp_path):
    edited = copy_of_templates(config, tmp_path)
    templates = tmp_path / "templates"
    (tmp_path / "content" / "comparison_table.yaml").unlink()
    (templates / "messages" / "loyalty" / "survey_reminder.yaml").write_text(
        "subject: '{{ contact.first_name'\nbody: <p>x</p>\n"
    )
    fr = templates / "tenants" / "fr.yaml"
    fr.write_text(fr.read_text().split("\n  de:\n")[0] + "\n")
    (templates / "messages" / "onboarding" / "welcome.yaml").write_text("subject: [\n")
    with pytest.raises(TemplateError) as caught:
        Templates.load(edited)
    lines = str(caught.value).splitlines()[1:]
    # comparison_table: 3 steps list it and 3 messages show it.
    unknown = [line for line in lines if "unknown content block 'comparison_table'" in line]
    assert len(unknown) == 6
    assert any("survey_reminder.yaml: subject: template syntax" in line for line in lines)
    assert any(f"{fr}: languages: no 'de' section (needed by fr" in line for line in lines)
    assert any("welcome.yaml:2: invalid YAML" in line for line in lines)
    assert len(lines) == 9


def test_a_missing_message_file_is_reported(config, tmp_path):
    edited = copy_of_templates(config, tmp_path)
    (tmp_path / "templates" / "messages" / "inactivity" / "we_miss_you.yaml").unlink()
    with pytest.raises(TemplateError, match=r"we_miss_you\.yaml: file not found"):
        Templates.load(edited)


def test_config_validate_reports_an_unknown_content_key(tmp_path):
    shutil.copytree(INCLUDE, tmp_path / "include")
    (tmp_path / "include" / "content" / "hydroscope_video.yaml").unlink()
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "include" / "config")
    message = str(caught.value)
    assert "(1 error)" in message
    assert "cross_sell.yaml" in message
    assert "step 'software_demo': send.content[1]: unknown content block 'hydroscope_video'" in (
        message
    )


def test_config_without_a_content_folder_is_not_checked(tmp_path):
    shutil.copytree(INCLUDE / "config", tmp_path / "include" / "config")
    shutil.copytree(INCLUDE / "templates", tmp_path / "include" / "templates")
    assert load_config(tmp_path / "include" / "config").campaigns


def test_block_files_are_strict(config, tmp_path):
    edited = copy_of_templates(config, tmp_path)
    block = Path(tmp_path / "content" / "service_hotline.yaml")
    block.write_text(block.read_text().replace("title:", "titel:"))
    with pytest.raises(TemplateError) as caught:
        Templates.load(edited)
    assert f"{block}: title: Field required" in str(caught.value)
    assert f"{block}: titel: Extra inputs are not permitted" in str(caught.value)
