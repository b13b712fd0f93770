"""Loading and validating the community file (YAML).

The file seeds the database on first start. Every problem is reported with its line in the file
and its path inside the document, all at once, so an admin can fix the file in one pass.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bot.directory import (
    Community,
    Directory,
    Grid,
    Group,
    RoutingPolicy,
    SlaPolicy,
    StaffMember,
    Street,
)
from bot.domain import Category, Role, Tier
from bot.durations import parse_duration
from bot.roster import Shift, parse_shift

Path_ = tuple[str | int, ...]
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_KEYWORD = 100  # characters of a keyword rule the rule store keeps (keywords.word)
BUILDING_BYTES = 18


class ConfigError(Exception):
    """The community file cannot be used; ``problems`` lists every reason with its location."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        plural = "problem" if len(problems) == 1 else "problems"
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"community file {source}: {len(problems)} {plural}:\n{lines}")


def _building(value: object) -> str:
    """Buildings are written as 3, "3", "3号楼", "3栋" or "3#"; keep the bare label."""
    text = str(value).strip()
    text = re.sub(r"(号楼|号|栋|幢|#)$", "", text)
    if not text:
        raise ValueError("empty building name")
    if len(text.encode("utf-8")) > BUILDING_BYTES or ":" in text:
        raise ValueError(f"building name {text!r} is too long or has ':' (it goes on a button)")
    return text


def _day_end(value: object) -> time:
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 20:00 as a base-60 integer
        value = f"{value // 60:02d}:{value % 60:02d}"
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        raise ValueError(f'bad time {value!r}: use HH:MM, like "20:00"')
    hours, minutes = (int(p) for p in value.strip().split(":"))
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad time {value!r}: use HH:MM between 00:00 and 23:59")
    return time(hours, minutes)


def _weight(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"bad weight {value!r}: use a number such as 1.5")
    weight = float(value)
    if not math.isfinite(weight) or weight <= 0 or weight > 100:
        raise ValueError(f"bad weight {value!r}: use a number above 0 and at most 100")
    return weight


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Building = Annotated[str, BeforeValidator(_building)]
DayEnd = Annotated[time, BeforeValidator(_day_end)]
Weight = Annotated[float, BeforeValidator(_weight)]
ShiftText = Annotated[Shift, BeforeValidator(parse_shift)]
Post = Literal["property", "grid_worker"]
# Ids travel inside Telegram button data, which may hold 64 bytes in all ("a:<ticket>:<id>").
Ident = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class _Strict(BaseModel):
    # Unknown keys are errors: a misspelt "backups:" must not silently leave a grid uncovered.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class _Resolve(_Strict):
    general: Duration
    major: Duration
    complex: Duration


class _Sla(_Strict):
    understand: Duration
    plan: Duration
    reply: Duration
    resolve: _Resolve
    day_end: DayEnd = time(20, 0)
    confirm: Duration = timedelta(days=1)  # resolved, no rating: closed as 未评价 after this


class _Staff(_Strict):
    id: Ident
    name: Name
    telegram_id: int
    role: Role
    on_duty: list[ShiftText] = []  # e.g. ["mon-fri 08:30-17:30"]; empty: always


class _Routing(_Strict):
    # Posts in the order they are tried; the first one the grid has filled takes the ticket.
    repair: list[Post] = Field(default=["property", "grid_worker"], min_length=1)
    dispute: list[Post] = Field(default=["grid_worker"], min_length=1)
    service: list[Post] = Field(default=["grid_worker"], min_length=1)
    urgent_to_community: bool = True
    me_too: bool = True  # false: every report opens its own ticket
    me_too_window: Duration = timedelta(hours=2)  # a same report this soon joins the ticket
    # 工单预警: this many reports of one category in one building, or in the whole community,
    # within burst_window open an incident that is handled as one.
    burst_building: int = Field(default=3, ge=2, le=10_000)
    burst_community: int = Field(default=5, ge=2, le=100_000)
    burst_window: Duration = timedelta(minutes=15)


class _Street(_Strict):
    name: Name
    staff: list[Ident] = []


class _Grid(_Strict):
    id: Ident
    name: Name
    buildings: list[Building] = []
    grid_worker: Ident | None = None
    property: Ident | None = None
    backup: list[Ident] = []


class _Group(_Strict):
    chat_id: int
    name: Name
    grid: Ident


class _Answer(_Strict):
    # 一次性告知: a service question about one of these topic words gets this whole answer.
    topic: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(min_length=1)
    text: Annotated[str, Field(min_length=1, max_length=1500)]


class _Community(_Strict):
    id: Ident
    name: Name
    staff: list[Ident] = []
    grids: list[_Grid] = Field(min_length=1)
    groups: list[_Group] = []
    routing: _Routing = _Routing()
    answers: list[_Answer] = []


# Category words, and cue words that add to the built-in cue lists (see nlp.rules).
KeywordKind = Literal[
    "repair", "dispute", "service", "cancel", "notice", "chatter", "question", "complaint"
]
KeywordTable = dict[KeywordKind, dict[str, Weight]]


class _File(_Strict):
    timezone: str = "Asia/Shanghai"
    sla: _Sla
    staff: list[_Staff] = Field(min_length=1)
    street: _Street | None = None
    communities: list[_Community] = Field(min_length=1)
    keywords: KeywordTable = {}
    answers: list[_Answer] = []  # district-wide; a community's own come first


@dataclass(frozen=True)
class CommunityFile:
    """A validated community file: the organisation and the initial keyword rules."""

    directory: Directory
    keywords: dict[str, dict[str, float]]
    digest: str
    # Known answers by scope ("*" for the district): [(topic words, answer text)].
    answers: dict[str, list[tuple[list[str], str]]] = field(default_factory=dict)


def _line_map(node: yaml.Node) -> tuple[dict[Path_, int], list[tuple[Path_, int]]]:
    """Map each path in the document to the 1-based line where its value starts, and list
    keys written twice in one mapping (YAML would silently keep only the last)."""
    lines: dict[Path_, int] = {}
    duplicates: list[tuple[Path_, int]] = []

    def walk(current: yaml.Node, path: Path_) -> None:
        lines[path] = current.start_mark.line + 1
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in current.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
                if key in seen:
                    duplicates.append(((*path, key), key_node.start_mark.line + 1))
                seen.add(key)
                lines.setdefault((*path, key), key_node.start_mark.line + 1)
                walk(value_node, (*path, key))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                walk(item, (*path, index))

    walk(node, ())
    return lines, duplicates


def _render_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class _Problems:
    """Collects problems with their locations in the file."""

    def __init__(self, source: str, lines: dict[Path_, int]) -> None:
        self.source = source
        self.lines = lines
        self.items: list[tuple[int, str]] = []

    def add(self, path: Path_, message: str) -> None:
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        self.items.append((line, f"{self.source}:{line}: {_render_path(path)}: {message}"))

    def add_at(self, line: int, path: Path_, message: str) -> None:
        self.items.append((line, f"{self.source}:{line}: {_render_path(path)}: {message}"))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.source, [text for _, text in sorted(self.items)])


def load_community_file(path: Path) -> CommunityFile:
    """Read, parse and validate the community file at ``path``.

    Raises:
        ConfigError: the file is unreadable, not YAML, or has problems (all of them listed).
    """
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(source, [f"file is larger than {MAX_FILE_BYTES} bytes"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"not UTF-8 text (byte {exc.start})"]) from None
    return parse_community_text(text, source=source)


def parse_community_text(text: str, source: str = "<community file>") -> CommunityFile:
    """Parse and validate community-file text; see :func:`load_community_file`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data: Any = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}: not valid YAML: {problem}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(source, [f"{source}:1: the file must be a YAML mapping (key: value)"])
    lines, duplicates = _line_map(node) if node is not None else ({}, [])
    problems = _Problems(source, lines)
    for path, line in duplicates:
        problems.add_at(line, path, "key written twice; YAML would keep only the last")
    parsed: _File | None = None
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            problems.add(tuple(error["loc"]), error["msg"].removeprefix("Value error, "))
    _cross_check(data, problems)
    problems.raise_if_any()
    assert parsed is not None  # no problems means the structure validated
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return CommunityFile(
        directory=_to_directory(parsed),
        keywords={str(cat): dict(words) for cat, words in parsed.keywords.items()},
        digest=digest,
        answers=_answers(parsed),
    )


def _answers(parsed: _File) -> dict[str, list[tuple[list[str], str]]]:
    scopes = {"*": parsed.answers, **{c.id: c.answers for c in parsed.communities}}
    return {
        scope: [([w.strip() for w in a.topic], a.text.strip()) for a in answers]
        for scope, answers in scopes.items()
    }


def _items(value: object) -> list[tuple[int, dict[str, Any]]]:
    """The mapping entries of a list, with their indexes; anything malformed is skipped
    (its shape was already reported by the structural validation)."""
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _strings(value: object) -> list[tuple[int, str]]:
    if not isinstance(value, list):
        return []
    return [(i, str(item)) for i, item in enumerate(value) if isinstance(item, str | int)]


def _cross_check(data: dict[str, Any], problems: _Problems) -> None:
    """Checks that span several parts of the file: references, duplicates, coverage.

    Runs on the raw document, defensively, so that reference problems are reported in the
    same pass as shape problems instead of one round of fixes later.
    """
    timezone = data.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(("timezone",), f"unknown time zone {timezone!r}")
    refs = _StaffRefs(_check_staff(data, problems), problems)
    street = data.get("street")
    if isinstance(street, dict):
        for i, sid in _strings(street.get("staff")):
            refs.check(("street", "staff", i), sid)
    _check_communities(data, refs, problems)
    keywords = data.get("keywords")
    if isinstance(keywords, dict):
        for category, words in keywords.items():
            if not isinstance(words, dict):
                continue
            if any(not str(w).strip() for w in words):
                problems.add(("keywords", category), "empty keyword")
            for word in words:
                if len(str(word).strip()) > MAX_KEYWORD:
                    problems.add(
                        ("keywords", category),
                        f"keyword longer than {MAX_KEYWORD} characters: {str(word)[:30]}…",
                    )


def _check_staff(data: dict[str, Any], problems: _Problems) -> set[str]:
    staff_ids: set[str] = set()
    telegram_ids: set[object] = set()
    for i, member in _items(data.get("staff")):
        sid, tid = member.get("id"), member.get("telegram_id")
        if sid in staff_ids:
            problems.add(("staff", i, "id"), f"duplicate staff id {sid!r}")
        if tid is not None and tid in telegram_ids:
            problems.add(("staff", i, "telegram_id"), f"duplicate telegram_id {tid}")
        if isinstance(tid, int) and tid <= 0:
            problems.add(("staff", i, "telegram_id"), "a person's Telegram id is a positive number")
        if isinstance(sid, str):
            staff_ids.add(sid)
        telegram_ids.add(tid)
    return staff_ids


@dataclass
class _StaffRefs:
    ids: set[str]
    problems: _Problems

    def check(self, path: Path_, staff_id: object) -> None:
        if staff_id is not None and str(staff_id) not in self.ids:
            self.problems.add(path, f"unknown staff id {staff_id!r}")


def _check_communities(data: dict[str, Any], refs: _StaffRefs, problems: _Problems) -> None:
    community_ids: set[object] = set()
    grid_ids: set[object] = set()
    chat_ids: set[object] = set()
    for ci, community in _items(data.get("communities")):
        base: Path_ = ("communities", ci)
        if community.get("id") in community_ids:
            problems.add((*base, "id"), f"duplicate community id {community.get('id')!r}")
        community_ids.add(community.get("id"))
        for si, sid in _strings(community.get("staff")):
            refs.check((*base, "staff", si), sid)
        building_owner: dict[str, object] = {}
        own_grids: set[object] = set()
        for gi, grid in _items(community.get("grids")):
            gpath: Path_ = (*base, "grids", gi)
            if grid.get("id") in grid_ids:
                problems.add((*gpath, "id"), f"duplicate grid id {grid.get('id')!r}")
            grid_ids.add(grid.get("id"))
            own_grids.add(grid.get("id"))
            _check_grid(grid, gpath, refs, building_owner, problems)
        for gi, group in _items(community.get("groups")):
            gpath = (*base, "groups", gi)
            chat_id = group.get("chat_id")
            if chat_id in chat_ids:
                problems.add((*gpath, "chat_id"), f"duplicate chat_id {chat_id}")
            chat_ids.add(chat_id)
            if isinstance(chat_id, int) and chat_id >= 0:
                problems.add((*gpath, "chat_id"), "a group's chat_id is negative, like -100123…")
            if "grid" in group and group["grid"] not in own_grids:
                problems.add(
                    (*gpath, "grid"),
                    f"no grid {group['grid']!r} in community {community.get('id')!r}",
                )


def _check_grid(
    grid: dict[str, Any],
    gpath: Path_,
    refs: _StaffRefs,
    building_owner: dict[str, object],
    problems: _Problems,
) -> None:
    refs.check((*gpath, "grid_worker"), grid.get("grid_worker"))
    refs.check((*gpath, "property"), grid.get("property"))
    for bi, sid in _strings(grid.get("backup")):
        refs.check((*gpath, "backup", bi), sid)
    if grid.get("grid_worker") is None and grid.get("property") is None:
        problems.add(gpath, "grid has no assignee: set grid_worker or property")
    for bi, raw_building in _strings(grid.get("buildings")):
        try:
            building = _building(raw_building)
        except ValueError:
            continue
        owner = building_owner.setdefault(building, grid.get("id"))
        if owner != grid.get("id"):
            problems.add(
                (*gpath, "buildings", bi),
                f"building {building!r} already belongs to grid {owner!r}",
            )


def _to_directory(parsed: _File) -> Directory:
    sla = SlaPolicy(
        understand=parsed.sla.understand,
        plan=parsed.sla.plan,
        reply=parsed.sla.reply,
        resolve={
            Tier.GENERAL: parsed.sla.resolve.general,
            Tier.MAJOR: parsed.sla.resolve.major,
            Tier.COMPLEX: parsed.sla.resolve.complex,
        },
        day_end=parsed.sla.day_end,
        confirm=parsed.sla.confirm,
    )
    communities = tuple(
        Community(
            id=c.id,
            name=c.name,
            staff=tuple(c.staff),
            grids=tuple(
                Grid(
                    id=g.id,
                    name=g.name,
                    community_id=c.id,
                    buildings=tuple(g.buildings),
                    grid_worker=g.grid_worker,
                    property=g.property,
                    backup=tuple(g.backup),
                )
                for g in c.grids
            ),
            groups=tuple(
                Group(chat_id=gr.chat_id, name=gr.name, community_id=c.id, grid_id=gr.grid)
                for gr in c.groups
            ),
            routing=RoutingPolicy(
                first={
                    Category.REPAIR: tuple(c.routing.repair),
                    Category.DISPUTE: tuple(c.routing.dispute),
                    Category.SERVICE: tuple(c.routing.service),
                },
                urgent_to_community=c.routing.urgent_to_community,
                me_too=c.routing.me_too,
                me_too_window=c.routing.me_too_window,
                burst_building=c.routing.burst_building,
                burst_community=c.routing.burst_community,
                burst_window=c.routing.burst_window,
            ),
        )
        for c in parsed.communities
    )
    return Directory(
        timezone=parsed.timezone,
        sla=sla,
        staff=tuple(
            StaffMember(
                id=s.id,
                name=s.name,
                telegram_id=s.telegram_id,
                role=s.role,
                roster=tuple(s.on_duty),
            )
            for s in parsed.staff
        ),
        street=Street(name=parsed.street.name, staff=tuple(parsed.street.staff))
        if parsed.street
        else None,
        communities=communities,
    )
