"""Shared helpers of the command-line tools: which rules to use."""

from __future__ import annotations

import os
from pathlib import Path

from nlp.rules import Rules, keyword_table_from_yaml

# The shipped demo community file (bot/demo/community.yaml), found without importing bot/.
DEMO_COMMUNITY_FILE = Path(__file__).resolve().parent.parent / "bot" / "demo" / "community.yaml"


def community_file() -> Path:
    """The file named by COMMUNITY_CONFIG, or the shipped demo file."""
    configured = os.environ.get("COMMUNITY_CONFIG", "").strip()
    return Path(configured) if configured else DEMO_COMMUNITY_FILE


def rules_from_environment() -> Rules:
    """The community file's keywords plus the built-in cue lists."""
    return Rules(keywords=keyword_table_from_yaml(community_file()))
