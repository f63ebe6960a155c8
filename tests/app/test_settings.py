"""Settings: read once, every bad key reported together, secrets never printed."""

from __future__ import annotations

import pytest

from app.settings import ConfigError, Secret, Settings


def test_defaults_follow_the_contract() -> None:
    """With only an endpoint id, every other setting takes its documented default."""
    s = Settings.from_env({"RUNPOD_ENDPOINT_ID": "abc123"})
    assert (s.host, s.port, s.tool_budget_ms) == ("0.0.0.0", 8000, 6000)
    assert s.endpoint_url == "https://api.runpod.ai/v2/abc123"
    assert s.log_format == "auto" and s.log_level == "INFO"


def test_endpoint_url_overrides_the_id() -> None:
    """RUNPOD_ENDPOINT_URL (a local RunPod) wins over the id and loses a trailing slash."""
    s = Settings.from_env(
        {"RUNPOD_ENDPOINT_ID": "abc", "RUNPOD_ENDPOINT_URL": "http://127.0.0.1:8101/v2/local/"}
    )
    assert s.endpoint_url == "http://127.0.0.1:8101/v2/local"


def test_every_bad_key_is_listed_in_one_error() -> None:
    """An operator sees all problems at once, each naming its key."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {"PORT": "eighty", "TOOL_BUDGET_MS": "5", "LOG_FORMAT": "xml", "FALLBACK_MESSAGE": " "}
        )
    assert set(info.value.problems) == {
        "PORT",
        "TOOL_BUDGET_MS",
        "LOG_FORMAT",
        "FALLBACK_MESSAGE",
        "RUNPOD_ENDPOINT_ID",
    }
    assert "PORT" in str(info.value) and "eighty" in str(info.value)


def test_secrets_are_masked_everywhere() -> None:
    """The API key never appears in repr, str or the public view of the settings."""
    s = Settings.from_env({"RUNPOD_ENDPOINT_ID": "e", "RUNPOD_API_KEY": "rp_supersecret"})
    assert s.runpod_api_key.reveal() == "rp_supersecret"
    for text in (repr(s), str(s), str(s.public_view())):
        assert "rp_supersecret" not in text
    assert s.public_view()["runpod_api_key"] == "***"
    assert repr(Secret("")) == "Secret('')"
