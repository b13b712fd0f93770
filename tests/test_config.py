"""The community file: the demo is believable, and every problem is reported with its line."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from bot.config import ConfigError, load_community_file, parse_community_text
from bot.domain import Role, Tier
from bot.durations import format_duration_zh, parse_duration
from bot.settings import DEMO_COMMUNITY_FILE

DEMO_TEXT = DEMO_COMMUNITY_FILE.read_text(encoding="utf-8")

MINIMAL = """\
sla:
  understand: 5m
  plan: 5m
  reply: 5m
  resolve: {general: 30m, major: 2h, complex: 1d}
staff:
  - {id: li, name: 李网格, telegram_id: 10001, role: grid_worker}
communities:
  - id: c1
    name: 社区
    grids:
      - {id: G1, name: 网格, buildings: [1, "2号楼"], grid_worker: li}
    groups:
      - {chat_id: -100, name: 群, grid: G1}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_community_text(text, source="c.yaml")
    return caught.value.problems


def test_demo_file_describes_a_believable_street() -> None:
    loaded = load_community_file(DEMO_COMMUNITY_FILE)
    directory = loaded.directory
    grids = [g for c in directory.communities for g in c.grids]
    assert len(directory.communities) >= 2
    assert len(grids) >= 5
    assert len(directory.staff) >= 12
    grids_with_group = {g.grid_id for g in directory.groups}
    assert grids_with_group == {g.id for g in grids}, "every grid has a group"
    assert {m.role for m in directory.staff} == set(Role)
    assert all(len(words) >= 15 for words in loaded.keywords.values())
    assert set(loaded.keywords) == {"repair", "dispute", "service"}


def test_demo_file_keeps_the_documented_example() -> None:
    directory = load_community_file(DEMO_COMMUNITY_FILE).directory
    group = directory.group(-1001000000001)
    assert group is not None
    assert (group.community_id, group.grid_id, group.name) == (
        "xingfu",
        "G01",
        "幸福小区1-3号楼业主群",
    )
    grid = directory.grid("G01")
    assert grid.buildings == ("1", "2", "3")
    assert (grid.grid_worker, grid.property, grid.backup) == ("li", "wang", ("liu",))
    li = directory.member("li")
    assert li is not None
    assert (li.telegram_id, li.role) == (10001, Role.GRID_WORKER)
    assert directory.street is not None
    assert directory.street.staff == ("sun",)
    sla = directory.sla
    assert (sla.understand, sla.plan, sla.reply) == (timedelta(minutes=5),) * 3
    assert sla.resolve == {
        Tier.GENERAL: timedelta(minutes=30),
        Tier.MAJOR: timedelta(hours=2),
        Tier.COMPLEX: timedelta(days=1),
    }
    assert sla.day_end == time(20, 0)


def test_minimal_file_loads_and_normalises_buildings() -> None:
    loaded = parse_community_text(MINIMAL)
    assert loaded.directory.grid("G1").buildings == ("1", "2")
    assert loaded.directory.timezone == "Asia/Shanghai"
    assert loaded.keywords == {}
    assert loaded.directory.sla.day_end == time(20, 0)


def test_digest_changes_with_the_text() -> None:
    assert parse_community_text(MINIMAL).digest != parse_community_text(MINIMAL + "\n# x").digest


def test_every_problem_is_reported_with_its_line_at_once() -> None:
    text = (
        DEMO_TEXT.replace("grid_worker: li\n", "grid_worker: lii\n", 1)
        .replace("understand: 5m", "understand: 5", 1)
        .replace("-1001000000002", "-1001000000001", 1)
        .replace("timezone: Asia/Shanghai", "timezone: Mars/Olympus", 1)
        .replace("backup: [liu]   ", "backups: [liu]  ", 1)
    )
    found = problems_of(text)
    lines = DEMO_TEXT.splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if fragment in line)

    expected = {
        f"c.yaml:{line_of('timezone:')}: timezone: unknown time zone 'Mars/Olympus'",
        f"c.yaml:{line_of('understand:')}: sla.understand: bad duration",
        f"c.yaml:{line_of('grid_worker: li')}: communities[0].grids[0].grid_worker: "
        "unknown staff id 'lii'",
        f"c.yaml:{line_of('backup: [liu]   ')}: communities[0].grids[0].backups: Extra inputs",
        f"c.yaml:{line_of('-1001000000002')}: communities[0].groups[1].chat_id: duplicate chat_id",
    }
    assert len(found) == len(expected)
    for prefix in expected:
        assert any(p.startswith(prefix) for p in found), (prefix, found)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            (
                "role: grid_worker}",
                "role: grid_worker}\n  - {id: li, name: X, telegram_id: 2, role: property}",
            ),
            "duplicate staff id 'li'",
        ),
        (
            ('buildings: [1, "2号楼"], grid_worker: li', "buildings: [1], grid_worker: null"),
            "grid has no assignee",
        ),
        (("grid: G1}", "grid: G9}"), "no grid 'G9' in community 'c1'"),
        (("chat_id: -100", "chat_id: 100"), "a group's chat_id is negative"),
        (("general: 30m", "general: 30 minutes"), "bad duration"),
        (("general: 30m", "general: 0s"), "must be longer than zero"),
        (("role: grid_worker", "role: janitor"), "staff[0].role"),
        (("id: li,", "id: 'li ok',"), "staff[0].id"),
        (("id: li,", f"id: {'l' * 41},"), "at most 40 characters"),
        (('"2号楼"]', '"2号楼", "第二十二号院东区北楼"]'), "is too long or has ':'"),
        (('"2号楼"]', '"2:1"]'), "is too long or has ':'"),
    ],
)
def test_each_kind_of_problem(change: tuple[str, str], expected: str) -> None:
    text = MINIMAL.replace(*change)
    assert text != MINIMAL
    found = problems_of(text)
    assert any(expected in p for p in found), found
    assert all(p.startswith("c.yaml:") for p in found)


def test_building_in_two_grids_of_one_community() -> None:
    text = MINIMAL.replace(
        "    groups:",
        '      - {id: G2, name: 二, buildings: ["2"], grid_worker: li}\n    groups:',
    )
    found = problems_of(text)
    assert any("building '2' already belongs to grid 'G1'" in p for p in found), found


def test_keywords_need_known_categories_and_positive_weights() -> None:
    text = MINIMAL + "keywords:\n  repair: {电梯: 2, 漏水: -1}\n  weather: {下雨: 1}\n"
    found = problems_of(text)
    assert any("keywords.repair.漏水" in p and "bad weight" in p for p in found), found
    assert any("keywords.weather" in p for p in found), found
    # Cue groups are categories too: a compound's own "chatter" words add to the built-in list.
    loaded = parse_community_text(MINIMAL + "keywords:\n  chatter: {你好: 1}\n", source="c.yaml")
    assert loaded.keywords == {"chatter": {"你好": 1.0}}


def test_a_keyword_longer_than_the_store_keeps_is_refused() -> None:
    """The rule store keeps 100 characters of a keyword: a longer one in the file is named as a
    problem when the file is read, not a failure when it is seeded into PostgreSQL."""
    long_rule = "re:(" + "|".join(f"词{i}" for i in range(40)) + ")"
    found = problems_of(MINIMAL + f'keywords:\n  dispute: {{"{long_rule}": 2, 吵架: 1}}\n')
    assert any("keywords.dispute" in p and "longer than 100" in p for p in found), found
    fits = "re:(" + "|".join(f"词{i}" for i in range(20)) + ")"
    assert len(fits) <= 100
    loaded = parse_community_text(
        MINIMAL + f'keywords:\n  dispute: {{"{fits}": 2}}\n', source="c.yaml"
    )
    assert loaded.keywords == {"dispute": {fits: 2.0}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "must be a YAML mapping"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("sla: [unclosed\n", "not valid YAML"),
        ("a: !!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_text_that_is_not_a_community_file(text: str, expected: str) -> None:
    found = problems_of(text)
    assert len(found) == 1
    assert expected in found[0]


def test_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_community_file(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_community_file(binary)


def test_unquoted_day_end_is_read_as_a_time() -> None:
    # YAML 1.1 reads 20:00 without quotes as the base-60 integer 1200.
    loaded = parse_community_text(MINIMAL.replace("complex: 1d}", "complex: 1d}\n  day_end: 20:30"))
    assert loaded.directory.sla.day_end == time(20, 30)


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("3s", 3), ("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400)],
)
def test_durations(raw: str, seconds: int) -> None:
    assert parse_duration(raw) == timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["5", 5, "", "5 minutes", "-5m", "m", None])
def test_bad_durations(raw: object) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(raw)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (300, "5分钟"),
        (7200, "2小时"),
        (86400, "1天"),
        (90, "1分30秒"),
        (3, "3秒"),
        (5400, "90分钟"),
    ],
)
def test_durations_in_chinese(seconds: int, text: str) -> None:
    assert format_duration_zh(timedelta(seconds=seconds)) == text
