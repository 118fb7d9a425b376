"""config/currents.yaml: the issue's shape, globs, defaults and refusals."""

import pytest

from cdpbridge.currents import CurrentsConfigError, load_currents_config, parse_currents_config

ISSUE_SHAPE = """
version: 1
routes:
  files:      {enabled: true, event_types: ["*"], destinations: [amperity]}
  lytics:     {enabled: false, event_types: ["users.messages.*"], stream: braze_engagement}
  engagement: {enabled: true}
"""


def test_the_documented_shape_loads_with_its_values():
    config = parse_currents_config(ISSUE_SHAPE)
    assert config.version == 1
    assert config.routes.files.enabled and config.routes.files.destinations == ("amperity",)
    assert config.routes.files.event_types == ("*",)
    assert not config.routes.lytics.enabled and config.routes.lytics.stream == "braze_engagement"
    assert config.routes.engagement.enabled


def test_event_types_are_chosen_by_name_or_glob_and_only_when_the_route_is_on():
    config = parse_currents_config(
        """
version: 1
routes:
  files: {enabled: true, event_types: ["users.behaviors.Purchase", "users.messages.email.*"]}
  lytics: {enabled: true, event_types: ["users.messages.*"], stream: s}
  engagement: {enabled: false}
"""
    )
    files, lytics = config.routes.files, config.routes.lytics
    assert files.takes("users.behaviors.Purchase")
    assert files.takes("users.messages.email.Open")
    assert not files.takes("users.messages.sms.Send")
    assert not files.takes("users.behaviors.PurchaseX")
    assert lytics.takes("users.messages.sms.Send")
    assert not lytics.takes("users.behaviors.Purchase")
    off = parse_currents_config(ISSUE_SHAPE).routes.lytics
    assert not off.takes("users.messages.email.Open")


def test_an_empty_config_means_files_for_amperity_and_engagement_on_lytics_off():
    config = parse_currents_config("version: 1")
    assert config.routes.files.takes("anything.at.All")
    assert config.routes.files.destinations == ("amperity",)
    assert config.routes.engagement.enabled and not config.routes.lytics.enabled
    assert config.dedupe.ttl_days == 14


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2", "version"),
        ("version: 1\nroutes: {file: {enabled: true}}", "routes.file: Extra inputs are not permitted"),
        ("version: 1\nroutes: {files: {destinations: ['../x']}}", "plain folder name"),
        ("version: 1\nroutes: {lytics: {stream: 'a b'}}", "letters, digits and underscores"),
        ("version: 1\nroutes: {files: {event_types: ['']}}", "must not be blank"),
        ("- 1", "mapping at the top level"),
        ("version: [", "not valid YAML"),
    ],
)
def test_bad_configs_are_refused_naming_the_file_and_the_key(text, message):
    with pytest.raises(CurrentsConfigError, match=r"currents\.yaml") as refused:
        parse_currents_config(text)
    assert message in str(refused.value)


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(CurrentsConfigError, match="cannot read"):
        load_currents_config(tmp_path / "nope.yaml")
