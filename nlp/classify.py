"""``python -m nlp.classify``: JSON lines in, one JSON classification per line out.

Each input line is ``{"text": "..."}``; each output line has ``category``, ``confidence``,
``urgent``, ``tier``, ``location`` and ``evidence``. A malformed line yields
``{"error": "..."}`` and processing continues. Rules: the keywords of the community file named
by COMMUNITY_CONFIG (the shipped demo file when unset) plus the built-in cue lists.
"""

from __future__ import annotations

import json
import sys
import types
from typing import IO, Any

from nlp.classifier import Classification
from nlp.classifier import classify as _classify
from nlp.rules import Rules


def _answer(line: str, rules: Rules) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"error": f"not JSON: {exc.msg} at column {exc.colno}"}
    if not isinstance(item, dict):
        return {"error": 'expected an object like {"text": "..."}'}
    text = item.get("text")
    if not isinstance(text, str):
        return {"error": 'missing "text" string'}
    return _classify(text, rules).as_dict()


def run(stdin: IO[str], stdout: IO[str], rules: Rules) -> int:
    """Classify every line of ``stdin``; return how many lines were malformed."""
    bad = 0
    for raw in stdin:
        line = raw.strip()
        if not line:
            continue
        answer = _answer(line, rules)
        bad += "error" in answer
        stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        stdout.flush()
    return bad


def main() -> int:
    """Entry point; exits 2 when the community file cannot be read."""
    from nlp.cli import community_file, rules_from_environment  # noqa: PLC0415

    try:
        rules = rules_from_environment()
    except (OSError, ValueError) as exc:
        print(f"error: setting COMMUNITY_CONFIG ({community_file()}): {exc}", file=sys.stderr)
        return 2
    for problem in rules.errors:
        print(f"warning: rule skipped: {problem}", file=sys.stderr)
    # Undecodable input bytes become U+FFFD instead of stopping the whole stream.
    stdin = open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    run(stdin, sys.stdout, rules)
    return 0


class _CallableModule(types.ModuleType):
    """``nlp.classify`` is both the function ``classify(text, rules)`` and this command's
    module. Importing the module rebinds the package attribute to it; making the module
    callable keeps ``nlp.classify(text, rules)`` working either way."""

    def __call__(self, text: str, rules: Rules) -> Classification:
        return _classify(text, rules)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
