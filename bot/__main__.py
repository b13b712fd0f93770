"""``python -m bot``: migrate, seed from the community file, and run the bot.

This is the process entry point, not core logic: it only parses settings, sets up logging and
hands over to the runtime in ``handlers``, which owns the Telegram and web libraries.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from bot.config import ConfigError
from bot.settings import SettingsError, load_settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
    # Every long poll is an HTTP request; at INFO these would drown the bot's own lines.
    for noisy in ("httpx", "httpcore", "aiohttp.access", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the bot; return the process exit code (2 for a bad setting or community file)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: python -m bot\n\nRuns the bot; settings come from the environment or .env"
            " (see README.md)."
        )
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.LOG_LEVEL)
    from handlers.runtime import StartupError, run  # noqa: PLC0415 - keeps the core import-light

    try:
        asyncio.run(run(settings))
    except ConfigError as exc:
        print(f"error: setting COMMUNITY_CONFIG: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
