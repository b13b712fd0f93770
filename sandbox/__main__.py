"""``python -m sandbox``: run the sandbox alone, as a Bot API server for a bot with a token.

Useful to try the token path without Telegram:

    python -m sandbox --port 8081 &
    TELEGRAM_BOT_TOKEN=123:ABC TELEGRAM_API_BASE_URL=http://127.0.0.1:8081/bot python -m bot
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from bot.config import ConfigError, load_community_file
from bot.settings import DEMO_COMMUNITY_FILE
from sandbox.server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    """Serve the Bot API and the chat page for the groups and staff of a community file."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--config", type=Path, default=DEMO_COMMUNITY_FILE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    try:
        directory = load_community_file(args.config).directory
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = SandboxServer.for_directory(directory)
    app = web.Application(client_max_size=1024 * 1024)
    server.add_routes(app)
    print(
        f"Bot API at http://{args.host}:{args.port}/bot, chat page at http://{args.host}:{args.port}/"
    )
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
