"""Worker settings: defaults, every bad key reported at once, secrets masked."""

from __future__ import annotations

import pytest

from gpu_worker.settings import ConfigError, Settings


def test_defaults_for_ollama():
    """Only MODEL is needed for Ollama; the rest has voice-friendly defaults."""
    settings = Settings.from_env({"MODEL": "llama3.2:3b"})
    assert settings.engine_kind == "ollama"
    assert settings.engine_url == "http://127.0.0.1:11434"
    assert (settings.max_concurrency, settings.default_max_tokens) == (8, 256)
    assert settings.ollama_keep_alive == -1 and settings.stream_batch_ms == 100


def test_openai_kind_needs_no_model_and_defaults_to_a_v1_base():
    """ENGINE_KIND=openai discovers the model; its default base ends in /v1."""
    settings = Settings.from_env({"ENGINE_KIND": "openai"})
    assert settings.engine_url == "http://127.0.0.1:8000/v1" and settings.model == ""


def test_every_bad_key_is_listed_in_one_error():
    """One ConfigError names every bad key, each with its reason."""
    env = {
        "ENGINE_KIND": "tgi",
        "MAX_CONCURRENCY": "0",
        "STREAM_BATCH_MS": "soon",
        "ENGINE_START_TIMEOUT_S": "-3",
        "ENGINE_URL": "localhost:11434",
        "OLLAMA_KEEP_ALIVE": "forever",
        "LOG_LEVEL": "chatty",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert set(caught.value.problems) == {
        "ENGINE_KIND",
        "MAX_CONCURRENCY",
        "STREAM_BATCH_MS",
        "ENGINE_START_TIMEOUT_S",
        "ENGINE_URL",
        "OLLAMA_KEEP_ALIVE",
        "LOG_LEVEL",
        "MODEL",
    }
    assert "MAX_CONCURRENCY: must be between 1 and 1024" in str(caught.value)


def test_openai_base_must_end_in_v1():
    """An OpenAI-compatible ENGINE_URL without /v1 is refused with the reason."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ENGINE_KIND": "openai", "ENGINE_URL": "http://127.0.0.1:8000"})
    assert "/v1" in caught.value.problems["ENGINE_URL"]


@pytest.mark.parametrize(
    ("raw", "parsed"), [("-1", -1), ("300", 300), ("1.5", 1.5), ("5m", "5m"), ("1h30m", "1h30m")]
)
def test_keep_alive_numbers_become_seconds_and_durations_stay_strings(raw, parsed):
    """OLLAMA_KEEP_ALIVE goes to Ollama as a number of seconds or a Go duration string."""
    assert Settings.from_env({"MODEL": "m", "OLLAMA_KEEP_ALIVE": raw}).ollama_keep_alive == parsed


def test_api_key_is_masked():
    """ENGINE_API_KEY never shows in repr."""
    settings = Settings.from_env({"ENGINE_KIND": "openai", "ENGINE_API_KEY": "sk-secret"})
    assert "sk-secret" not in repr(settings) and settings.engine_api_key.reveal() == "sk-secret"
