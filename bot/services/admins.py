"""Who may use the web admin: passwords (Argon2id hashes) and sessions.

Only staff with the ``admin`` role in the community file can have a password. A session is
a random token in a cookie; the database keeps only its SHA-256, so a leaked database does
not hand out live sessions. Each session has its own CSRF token for every form.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.directory import DirectoryHolder, StaffMember
from bot.domain import DomainError, Role
from bot.ports import Clock, UnitOfWorkFactory

logger = logging.getLogger(__name__)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 10
MAX_PASSWORD = 200
# After this many wrong passwords for one name, refuse that name for a while.
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=5)
_HASHER = PasswordHasher()  # Argon2id with the library's current recommended parameters
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


class BadPassword(DomainError):
    """A password that cannot be set; ``reason``: not_admin, too_short, too_long."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Login:
    """A new session: the cookie value and the CSRF token of its forms."""

    token: str
    csrf: str
    member: StaffMember


@dataclass(frozen=True)
class Session:
    """A live session."""

    member: StaffMember
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


class AdminAuth:
    """Passwords and sessions of admins."""

    def __init__(self, uows: UnitOfWorkFactory, directory: DirectoryHolder, clock: Clock) -> None:
        self._uows = uows
        self._directory = directory
        self._clock = clock
        self._failures: dict[str, list[datetime]] = {}

    def admin(self, staff_id: str) -> StaffMember | None:
        """The admin with this id, or None (unknown, or not an admin)."""
        member = self._directory.current.member(staff_id)
        return member if member is not None and member.role == Role.ADMIN else None

    async def set_password(self, staff_id: str, password: str) -> None:
        """Store a new password for an admin; their open sessions end."""
        if self.admin(staff_id) is None:
            raise BadPassword("not_admin")
        if len(password) < MIN_PASSWORD:
            raise BadPassword("too_short")
        if len(password) > MAX_PASSWORD:
            raise BadPassword("too_long")
        hashed = await asyncio.to_thread(_HASHER.hash, password)
        async with self._uows() as uow:
            await uow.admins.set_password_hash(staff_id, hashed, self._clock.now())
            await uow.commit()
        logger.info("web password set for admin %s", staff_id)

    def locked(self, staff_id: str) -> bool:
        """Too many wrong passwords lately."""
        since = self._clock.now() - LOCKOUT
        recent = [t for t in self._failures.get(staff_id, []) if t > since]
        self._failures[staff_id] = recent
        return len(recent) >= MAX_FAILURES

    async def login(self, staff_id: str, password: str) -> Login | None:
        """A session for the right admin and password; None otherwise (logged)."""
        staff_id = staff_id.strip()[:64]
        if self.locked(staff_id):
            logger.warning("web login refused for %r: locked after repeated failures", staff_id)
            return None
        member = self.admin(staff_id)
        stored = None
        if member is not None:
            async with self._uows() as uow:
                stored = await uow.admins.password_hash(staff_id)
        ok = await asyncio.to_thread(_verify, stored or _DUMMY_HASH, password[:MAX_PASSWORD])
        if member is None or stored is None or not ok:
            self._failures.setdefault(staff_id, []).append(self._clock.now())
            logger.warning("web login failed for %r", staff_id)
            return None
        self._failures.pop(staff_id, None)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._clock.now()
        async with self._uows() as uow:
            await uow.admins.purge_sessions(now)
            await uow.admins.add_session(
                _digest(token), staff_id, csrf, now, now + SESSION_LIFETIME
            )
            await uow.commit()
        logger.info("admin %s logged in to the web admin", staff_id)
        return Login(token, csrf, member)

    async def session(self, token: str | None) -> Session | None:
        """The live session of a cookie value, if any."""
        if not token or len(token) > 200:
            return None
        async with self._uows() as uow:
            found = await uow.admins.session_for(_digest(token), self._clock.now())
        if found is None:
            return None
        member = self.admin(found[0])
        return Session(member, found[1]) if member else None

    async def logout(self, token: str) -> None:
        """End a session."""
        async with self._uows() as uow:
            await uow.admins.end_session(_digest(token))
            await uow.commit()


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
