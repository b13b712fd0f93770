"""``python -m bot``: migrate, seed from the community file, and run the bot.

This is the process entry point, not core logic: it only parses settings, sets up logging and
hands over to the runtime in ``handlers``, which owns the Telegram and web libraries.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import sys
from collections.abc import Callable

from bot.config import ConfigError
from bot.logs import configure as configure_logging
from bot.settings import SettingsError, load_settings

USAGE = """usage: python -m bot                      run the bot
       python -m bot set-password ADMIN_ID   set an admin's web admin password

Settings come from the environment or .env (see README.md). set-password reads the new
password twice from the terminal, or once from standard input when it is piped."""


def _read_password() -> str | None:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("新密码 / new password: ")
    if getpass.getpass("再输入一次 / again: ") != first:
        print("error: the two passwords differ", file=sys.stderr)
        return None
    return first


def set_password(staff_id: str) -> int:
    """``python -m bot set-password ID``: exit code 0 when stored."""
    from bot.services.admins import MIN_PASSWORD, BadPassword  # noqa: PLC0415
    from handlers.runtime import StartupError, set_admin_password  # noqa: PLC0415

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    password = _read_password()
    if password is None:
        return 2
    try:
        asyncio.run(set_admin_password(settings, staff_id, password))
    except BadPassword as exc:
        reasons = {
            "not_admin": f"{staff_id!r} is not staff with role admin in the community file",
            "too_short": f"the password needs at least {MIN_PASSWORD} characters",
            "too_long": "the password is too long",
        }
        print(f"error: {reasons.get(exc.reason, exc.reason)}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"error: setting COMMUNITY_CONFIG: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"password set for {staff_id}; open sessions of {staff_id} were ended")
    return 0


def _command(args: list[str]) -> int:
    if args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if args[0] == "set-password" and len(args) == 2:
        logging.basicConfig(level="WARNING")
        return set_password(args[1])
    print(f"error: unknown command {' '.join(args)!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the bot; return the process exit code (2 for a bad setting or community file)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        return _command(args)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    from handlers.runtime import StartupError, run  # noqa: PLC0415 - keeps the core import-light

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(run(settings))
    except ConfigError as exc:
        print(f"error: setting COMMUNITY_CONFIG: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (Linux, macOS), else asyncio's own.

    uvloop makes each socket wake-up and thread hand-off cheaper (the load benchmark,
    BENCHMARKS.md, measured 54 -> 83 messages a second on the same code, when database calls
    still crossed to aiosqlite's thread)."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
