"""``python -m bot`` as a real process: it serves the sandbox, and bad settings stop it cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import DEMO_COMMUNITY_FILE
from tests.conftest import free_port
from tests.helpers import GROUP_G01, RESIDENT

ROOT = Path(__file__).resolve().parent.parent
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEB_"))}
    env.pop("DATABASE_URL", None)
    env.pop("COMMUNITY_CONFIG", None)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_bot(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=bot_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def http(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with _opener.open(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def running_bot(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The bot on its embedded defaults, in a fresh folder, on a free port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=bot_env(tmp_path, WEB_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "sandbox ready" in line:
            break
    else:
        process.kill()
    assert any("sandbox ready" in line for line in lines), "".join(lines)
    assert f"http://127.0.0.1:{port}/" in lines[-1]  # the log tells where the page is
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        process.stdout.close()


def test_fresh_folder_install_serves_a_ticket_in_the_sandbox(
    running_bot: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    base, process = running_bot
    assert (tmp_path / "data" / "bot.db").is_file()  # default SQLite file, folder created
    page = _opener.open(base + "/", timeout=10).read().decode()
    assert "网格助手" in page
    since = http(base + "/sandbox/api/poll?since=0&timeout=0")["version"]
    http(
        base + "/sandbox/api/send",
        {"user_id": RESIDENT, "chat_id": GROUP_G01, "text": "3号楼电梯坏了"},
    )
    reply = None
    deadline = time.monotonic() + 10
    while reply is None and time.monotonic() < deadline:
        changes = http(base + f"/sandbox/api/poll?since={since}&timeout=2")
        since = changes["version"]
        # The group's answer and the staff ping go out side by side, in either order.
        mine = (m for m in changes["messages"] if m["is_bot"] and m["chat_id"] == GROUP_G01)
        reply = next(mine, None)
    assert reply is not None
    assert "工单号 #1" in reply["text"]

    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"TELEGRAM_BOT_TOKEN": "not a token"}, "error: setting TELEGRAM_BOT_TOKEN: malformed"),
        ({"DATABASE_URL": "mysql://root@localhost/x"}, "error: setting DATABASE_URL: unknown"),
        ({"WEB_PORT": "http"}, "error: setting WEB_PORT:"),
        ({"COMMUNITY_CONFIG": "/nonexistent/community.yaml"}, "error: setting COMMUNITY_CONFIG:"),
    ],
)
def test_bad_setting_stops_with_one_clear_line(
    tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    result = run_bot(tmp_path, **extra)
    assert result.returncode == 2
    assert result.stderr.startswith(expected), result.stderr
    assert "Traceback" not in result.stderr
    if "COMMUNITY_CONFIG" not in extra:
        assert result.stderr.count("\n") == 1


def test_invalid_community_file_lists_its_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        DEMO_COMMUNITY_FILE.read_text(encoding="utf-8").replace(
            "grid_worker: li\n", "grid_worker: nobody\n"
        ),
        encoding="utf-8",
    )
    result = run_bot(tmp_path, COMMUNITY_CONFIG=str(bad))
    assert result.returncode == 2
    assert "error: setting COMMUNITY_CONFIG: community file" in result.stderr
    assert "communities[0].grids[0].grid_worker: unknown staff id 'nobody'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_names_the_setting(tmp_path: Path) -> None:
    closed = free_port()
    result = run_bot(tmp_path, DATABASE_URL=f"postgresql+asyncpg://nobody@127.0.0.1:{closed}/x")
    assert result.returncode == 2
    assert last_line(result.stderr).startswith(
        "error: setting DATABASE_URL: cannot use the database"
    )
    assert "Traceback" not in result.stderr


def test_busy_port_names_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_bot(tmp_path, WEB_PORT=str(port))
    assert result.returncode == 2
    assert last_line(result.stderr).startswith(
        f"error: setting WEB_PORT: cannot listen on 127.0.0.1:{port}"
    )
    assert "Traceback" not in result.stderr


def test_unreachable_bot_api_names_the_setting(tmp_path: Path) -> None:
    closed = free_port()
    result = run_bot(
        tmp_path,
        TELEGRAM_BOT_TOKEN="123:ABC",
        TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{closed}/bot",
    )
    assert result.returncode == 2
    assert last_line(result.stderr).startswith("error: setting TELEGRAM_API_BASE_URL: cannot reach")
    assert "Traceback" not in result.stderr
