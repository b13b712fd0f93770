"""Routing as pure rules: rosters, the community's dispatch policy, who is on duty, privacy in
groups and what counts as the same problem; then rosters driving real intake on a fake clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.config import CommunityFile, parse_community_text
from bot.core import build_core
from bot.directory import StaffMember
from bot.domain import Category, Presence, Role, Ticket, TicketStatus, Tier
from bot.roster import describe, on_roster, parse_shift
from bot.services import metoo, privacy, routing
from bot.services.intake import IncomingMessage, Outcome
from storage.uow import SqlUnitOfWorkFactory
from tests.test_config import DEMO_TEXT, MINIMAL, problems_of


def local(weekday: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time on a weekday (0 = Monday) of the week of 2026-11-23."""
    return datetime(2026, 11, 23 + weekday, hour, minute)


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("mon-fri 08:30-17:30", [(0, 8, 30), (4, 17, 29)], [(0, 8, 29), (4, 17, 30), (5, 10)]),
        ("sat,sun 09:00-12:00", [(5, 9), (6, 11, 59)], [(0, 10), (5, 12)]),
        ("daily 22:00-06:00", [(0, 23), (1, 5, 59), (0, 0, 30)], [(0, 6), (0, 21, 59)]),
        ("fri-mon 10:00-11:00", [(4, 10), (6, 10), (0, 10)], [(1, 10), (3, 10)]),
        ("mon 08:00-24:00", [(0, 23, 59)], [(1, 0), (0, 7)]),
    ],
)
def test_shifts(text: str, inside: list[tuple[int, ...]], outside: list[tuple[int, ...]]) -> None:
    shifts = (parse_shift(text),)
    for when in inside:
        assert on_roster(shifts, local(*when)), (text, when)
    for when in outside:
        assert not on_roster(shifts, local(*when)), (text, when)


def test_no_roster_means_always_and_rosters_read_back_in_chinese() -> None:
    assert on_roster((), local(6, 3))
    assert describe(()) == "全天"
    assert (
        describe((parse_shift("MON-FRI 8:30-17:30"),)) == "周一、周二、周三、周四、周五 08:30-17:30"
    )


@pytest.mark.parametrize(
    "bad", ["weekdays 08:00-17:00", "mon-fri 8-17", "mon 25:00-26:00", "mon 09:00-09:00", 42, ""]
)
def test_bad_shifts_say_how_to_write_them(bad: object) -> None:
    with pytest.raises(ValueError, match="bad"):
        parse_shift(bad)


def test_roster_and_routing_problems_are_reported_with_their_line() -> None:
    text = MINIMAL.replace(
        "role: grid_worker}", 'role: grid_worker, on_duty: ["weekdays 9-5"]}'
    ).replace("    grids:\n", "    routing: {repair: [plumber]}\n    grids:\n")
    found = problems_of(text)
    assert any(
        p.startswith("c.yaml:7: staff[0].on_duty[0]: bad shift 'weekdays 9-5'") for p in found
    )
    assert any(p.startswith("c.yaml:11: communities[0].routing.repair[0]:") for p in found)


def test_routing_policy_and_roster_load_and_survive_the_database_round_trip() -> None:
    text = MINIMAL.replace(
        "role: grid_worker}", 'role: grid_worker, on_duty: ["mon-fri 08:30-17:30"]}'
    ).replace(
        "    grids:\n",
        "    routing: {repair: [grid_worker], urgent_to_community: false, me_too_window: 30m}\n"
        "    grids:\n",
    )
    loaded = parse_community_text(text).directory
    policy = loaded.communities[0].routing
    assert policy.first[Category.REPAIR] == ("grid_worker",)
    assert policy.first[Category.DISPUTE] == ("grid_worker",)  # the default
    assert (policy.urgent_to_community, policy.me_too_window) == (False, timedelta(minutes=30))
    assert [s.text for s in loaded.staff[0].roster] == ["mon-fri 08:30-17:30"]


async def test_directory_with_rosters_round_trips(uows: SqlUnitOfWorkFactory) -> None:
    text = MINIMAL.replace(
        "role: grid_worker}", 'role: grid_worker, on_duty: ["sat,sun 09:00-12:00"]}'
    ).replace("    grids:\n", "    routing: {service: [property, grid_worker]}\n    grids:\n")
    directory = parse_community_text(text).directory
    async with uows() as uow:
        await uow.directory.replace(directory)
        await uow.commit()
    async with uows() as uow:
        loaded = await uow.directory.load()
    assert loaded == directory


def demo() -> CommunityFile:
    return parse_community_text(DEMO_TEXT)


def test_the_policy_picks_the_post_and_falls_back_to_whoever_the_grid_has() -> None:
    directory = demo().directory
    group = directory.groups[0]  # G01: property 王管家, grid worker 李网格
    home = directory.grid(group.grid_id)
    assert routing.route(directory, home, Category.REPAIR, None).assignee.id == "wang"  # type: ignore[union-attr]
    assert routing.route(directory, home, Category.DISPUTE, None).assignee.id == "li"  # type: ignore[union-attr]
    # G03 has no property company: its repairs go to the grid worker.
    g03 = routing.route(directory, home, Category.REPAIR, "8")
    assert (g03.grid.id, g03.assignee and g03.assignee.id, g03.reason) == (
        "G03",
        "zhou",
        "网格G03网格员",
    )
    # A community that sends repairs to its grid workers first.
    xingfu = directory.communities[0]
    changed = replace(
        xingfu,
        routing=replace(
            xingfu.routing, first={**xingfu.routing.first, Category.REPAIR: ("grid_worker",)}
        ),
    )
    other = replace(directory, communities=(changed, *directory.communities[1:]))
    assert routing.route(other, home, Category.REPAIR, None).assignee.id == "li"  # type: ignore[union-attr]


def test_off_duty_people_are_passed_over_up_the_ladder() -> None:
    directory = demo().directory
    home = directory.grid("G01")
    off = {"wang", "liu"}
    picked = routing.route(directory, home, Category.REPAIR, None, lambda m: m.id not in off)
    assert (picked.assignee and picked.assignee.id, picked.level) == ("zhao", 2)
    assert picked.reason == "备岗接替：幸福社区（王管家、刘网格不在岗）"
    nobody = routing.route(directory, home, Category.REPAIR, None, lambda m: False)
    assert (nobody.assignee and nobody.assignee.id, nobody.level) == ("wang", 0)
    assert nobody.reason == "网格G01物业管家（均不在岗）"


def test_availability_combines_roster_off_duty_and_a_manual_on_duty() -> None:
    member = StaffMember("x", "某", 1, Role.GRID_WORKER, (parse_shift("mon-fri 09:00-17:00"),))
    monday_10 = datetime(2026, 11, 23, 2, tzinfo=UTC)  # 10:00 in Shanghai
    monday_20 = datetime(2026, 11, 23, 12, tzinfo=UTC)  # 20:00
    zone = "Asia/Shanghai"
    assert routing.is_available(member, None, monday_10, zone)
    assert not routing.is_available(member, None, monday_20, zone)
    assert not routing.is_available(member, Presence("x", off_duty=True), monday_10, zone)
    until = monday_20 + timedelta(hours=1)
    assert routing.is_available(member, Presence("x", on_duty_until=until), monday_20, zone)
    assert not routing.is_available(member, Presence("x", on_duty_until=until), until, zone)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("请联系13812345678", "请联系[电话已隐藏]"),
        ("电话 +86 138-1234-5678 王", "电话 [电话已隐藏] 王"),
        ("座机010-12345678", "座机[电话已隐藏]"),
        ("身份证11010519491231002X丢了", "身份证[身份证号已隐藏]丢了"),
        ("3号楼2单元501漏水", "3号楼2单元***漏水"),
        ("3栋502室", "3栋***"),
        ("住在1201室", "住在***室"),
        ("3-2-501的业主", "3-2-***的业主"),
        ("师傅20分钟内到场，预计下午3点修好", "师傅20分钟内到场，预计下午3点修好"),
        ("水费2024年上涨", "水费2024年上涨"),
    ],
)
def test_group_texts_never_carry_phones_ids_or_rooms(text: str, shown: str) -> None:
    assert privacy.redact(text) == shown


def _ticket(**changes: object) -> Ticket:
    base = Ticket(
        id=1,
        community_id="xingfu",
        grid_id="G01",
        chat_id=-1,
        message_id=1,
        reporter_id=1,
        reporter_name="",
        text="3号楼电梯坏了",
        category=Category.REPAIR,
        confidence=0.9,
        urgent=False,
        tier=Tier.MAJOR,
        status=TicketStatus.NEW,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        location={"building": "3"},
        topic="电梯",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_what_counts_as_the_same_problem() -> None:
    topic = metoo.topic_words([("keyword", "电梯"), ("keyword", "坏了"), ("complaint", "又")])
    assert topic == "电梯"
    same = {"grid_id": "G01", "building": "3", "topic": "电梯"}
    assert metoo.same_problem(_ticket(), **same)
    assert metoo.same_problem(_ticket(), grid_id="G01", building=None, topic="电梯 停了")
    assert not metoo.same_problem(_ticket(), grid_id="G01", building="2", topic="电梯")
    assert not metoo.same_problem(_ticket(), grid_id="G02", building="3", topic="电梯")
    assert not metoo.same_problem(_ticket(), grid_id="G01", building="3", topic="楼道灯")
    assert not metoo.same_problem(_ticket(topic=""), grid_id="G01", building="3", topic="")
    assert not metoo.same_problem(_ticket(category=Category.SERVICE), **same)
    assert not metoo.same_problem(_ticket(status=TicketStatus.RESOLVED), **same)
    older, newer = _ticket(id=3), _ticket(id=7)
    assert metoo.find_same([newer, older], **same) == older


ROSTERED = DEMO_TEXT.replace(
    "telegram_id: 10002, role: property}",
    'telegram_id: 10002, role: property, on_duty: ["mon-fri 08:30-17:30"]}',
)


@pytest.mark.parametrize(
    ("utc", "assignee", "level"),
    [
        (datetime(2026, 11, 23, 2, tzinfo=UTC), "wang", 0),  # Monday 10:00 in Shanghai
        (datetime(2026, 11, 23, 12, tzinfo=UTC), "liu", 1),  # Monday 20:00: the backup post
        (datetime(2026, 11, 28, 2, tzinfo=UTC), "liu", 1),  # Saturday 10:00
    ],
)
async def test_the_roster_decides_who_gets_a_new_ticket(
    uows: SqlUnitOfWorkFactory, utc: datetime, assignee: str, level: int
) -> None:
    clock = FakeClock(utc)
    core = await build_core(uows, parse_community_text(ROSTERED), clock)
    result = await core.intake.receive_group_message(
        IncomingMessage(-1001000000001, 1, 5000001, "张阿姨", "3号楼电梯坏了", clock.now())
    )
    assert result.outcome is Outcome.OPENED
    assert result.ticket is not None
    assert (result.ticket.assignee_id, result.ticket.level) == (assignee, level)
