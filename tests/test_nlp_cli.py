"""``python -m nlp.classify`` and ``python -m nlp.evaluate`` as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.settings import DEMO_COMMUNITY_FILE

ROOT = Path(__file__).resolve().parent.parent


def run(
    module: str, *args: str, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    environment = {k: v for k, v in os.environ.items() if k != "COMMUNITY_CONFIG"}
    environment.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        input=stdin,
        capture_output=True,
        env=environment,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_classify_answers_every_line_and_survives_bad_ones() -> None:
    lines = [
        json.dumps({"text": "3号楼电梯坏了"}, ensure_ascii=False),
        "not json at all",
        json.dumps(["a", "list"]),
        json.dumps({"msg": "no text key"}),
        json.dumps({"text": 42}),
        "",
        json.dumps({"text": "5号楼电梯困人了！！"}, ensure_ascii=False),
        json.dumps({"text": "谢谢王师傅"}, ensure_ascii=False),
    ]
    stdin = ("\n".join(lines) + "\n").encode() + b'\xff\xfe{"text": "x"}\n'
    result = run("nlp.classify", stdin=stdin)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(answers) == 8  # one per non-empty input line, in order
    first = answers[0]
    assert set(first) == {"category", "confidence", "urgent", "tier", "location", "evidence"}
    assert (first["category"], first["location"]) == ("repair", {"building": "3"})
    assert all("error" in a for a in answers[1:5])
    assert answers[4]["error"] == 'missing "text" string'
    assert answers[5]["urgent"] is True
    assert answers[6]["category"] == "none"
    assert "error" in answers[7]  # undecodable bytes become U+FFFD, the line is not JSON


def test_classify_uses_the_community_file_named_by_the_setting(tmp_path: Path) -> None:
    custom = tmp_path / "community.yaml"
    custom.write_text(
        DEMO_COMMUNITY_FILE.read_text(encoding="utf-8").replace(
            "  repair:\n", "  repair:\n    趴窝: 4\n", 1
        ),
        encoding="utf-8",
    )
    line = json.dumps({"text": "老家伙又趴窝了"}, ensure_ascii=False).encode() + b"\n"
    assert json.loads(run("nlp.classify", stdin=line).stdout)["category"] == "none"
    answer = json.loads(run("nlp.classify", stdin=line, COMMUNITY_CONFIG=str(custom)).stdout)
    assert answer["category"] == "repair"
    assert {"rule": "keyword", "word": "趴窝", "category": "repair", "weight": 4.0} in answer[
        "evidence"
    ]


def test_classify_refuses_an_unreadable_community_file(tmp_path: Path) -> None:
    result = run("nlp.classify", stdin=b"{}\n", COMMUNITY_CONFIG=str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr.decode().startswith("error: setting COMMUNITY_CONFIG")


def test_evaluate_prints_the_report(tmp_path: Path) -> None:
    corpus = tmp_path / "small.tsv"
    corpus.write_text(
        "label\ttext\turgent\n"
        "repair\t3号楼电梯坏了\t\n"
        "repair\t5号楼电梯困人了\t1\n"
        "dispute\t楼上半夜装修吵死了\t\n"
        "service\t社保卡在哪里补办\t\n"
        "none\t谢谢王师傅\t\n"
        "none\t3号楼电梯坏了好几天了\t\n"
        "weird\tunknown label\t\n",
        encoding="utf-8",
    )
    result = run("nlp.evaluate", str(corpus))
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    for expected in (
        "messages: 6",
        "precision",
        "macro-F1",
        "confusion (rows: label, columns: predicted)",
        "false-ticket rate (none -> request): 50.00%",
        "missed-request rate (request -> none): 0.00%",
        "urgent recall: 100.00% of 1",
        "misclassified (1):",
        "none -> repair\t3号楼电梯坏了好几天了",
    ):
        assert expected in out, expected
    assert "unknown label 'weird'" in result.stderr.decode()


def test_evaluate_without_header_and_with_bad_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tsv"
    plain.write_text("repair\t3号楼电梯坏了\nnone\t早上好\n", encoding="utf-8")
    result = run("nlp.evaluate", str(plain), "--quiet")
    assert result.returncode == 0
    assert "macro-F1" in result.stdout.decode()
    assert "misclassified" not in result.stdout.decode()
    assert run("nlp.evaluate", str(tmp_path / "missing.tsv")).returncode == 2
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"\x00\x01\x02")
    assert run("nlp.evaluate", str(empty)).returncode == 2
