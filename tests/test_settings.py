"""Settings: names, defaults, .env, and one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import DEFAULT_DATABASE_URL, DEMO_COMMUNITY_FILE, SettingsError, load_settings


def test_defaults_run_the_sandbox_on_sqlite() -> None:
    settings = load_settings()
    assert settings.TELEGRAM_BOT_TOKEN is None
    assert settings.sandbox
    assert settings.TELEGRAM_API_BASE_URL is None
    assert settings.DATABASE_URL == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///data/bot.db"
    assert settings.COMMUNITY_CONFIG == DEMO_COMMUNITY_FILE
    assert DEMO_COMMUNITY_FILE.is_file()
    assert (settings.WEB_HOST, settings.WEB_PORT) == ("127.0.0.1", 8080)


def test_token_switches_off_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:ABC")
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", "http://127.0.0.1:8081/bot")
    settings = load_settings()
    assert not settings.sandbox
    assert settings.TELEGRAM_BOT_TOKEN is not None
    assert settings.TELEGRAM_BOT_TOKEN.get_secret_value() == "123:ABC"
    assert "123:ABC" not in repr(settings)  # secrets stay out of logs
    assert settings.TELEGRAM_API_BASE_URL == "http://127.0.0.1:8081/bot"


def test_dotenv_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("WEB_PORT=9191\nWEB_HOST=0.0.0.0\n", encoding="utf-8")
    monkeypatch.setenv("WEB_HOST", "127.0.0.2")
    settings = load_settings()
    assert settings.WEB_PORT == 9191
    assert settings.WEB_HOST == "127.0.0.2"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "malformed bot token"),
        ("TELEGRAM_BOT_TOKEN", "123:ABC DEF", "malformed bot token"),
        ("TELEGRAM_API_BASE_URL", "ftp://example", "http(s) URL"),
        ("DATABASE_URL", "mysql://root@localhost/db", "unknown database scheme 'mysql'"),
        ("DATABASE_URL", "sqlite:///data/bot.db", "unknown database scheme 'sqlite'"),
        ("WEB_PORT", "eighty", "WEB_PORT"),
        ("WEB_PORT", "70000", "WEB_PORT"),
    ],
)
def test_bad_setting_names_itself_in_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"setting {name}:")
    assert expected in message
    assert "\n" not in message
