"""A local, Telegram-Bot-API-compatible sandbox: a dev tool and a test fixture.

python-telegram-bot talks to it through ``base_url`` exactly as it talks to Telegram, so the
real handler code runs unchanged; a web chat page lets a person play residents and staff.
"""

from sandbox.server import SandboxServer
from sandbox.world import BotApiError, World

__all__ = ["BotApiError", "SandboxServer", "World"]
