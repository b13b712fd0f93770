"""Telegram's sending limits as sliding windows: never more than N messages in any W seconds.

A token bucket would let a group receive its 20-message burst and then 20 more as the bucket
refills within the same minute; Telegram counts per minute, so a sliding log of send times is
used instead: exact, and small (at most N timestamps per active chat).

Times are plain floats (monotonic seconds) so the limiter is pure and testable; a small margin
stretches every window so network jitter cannot make two sends look closer at Telegram's end
than they were at ours.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MARGIN = 1.05  # windows are 5% longer than Telegram's


def is_group(chat_id: int) -> bool:
    """Groups and supergroups have negative ids; private chats positive ones."""
    return chat_id < 0


@dataclass
class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds."""

    limit: int
    window: float
    _times: deque[float] = field(default_factory=deque)

    def _forget(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def room(self, now: float) -> int:
        """How many events may happen now."""
        self._forget(now)
        return max(0, self.limit - len(self._times))

    def wait(self, now: float) -> float:
        """Seconds until one more event is allowed (0 if now)."""
        if self.room(now) > 0:
            return 0.0
        return self._times[0] + self.window - now

    def record(self, now: float) -> None:
        """One event happened at ``now``."""
        self._times.append(now)

    @property
    def idle(self) -> bool:
        """Nothing remembered: the window can be dropped."""
        return not self._times


@dataclass
class RateLimits:
    """Per-group, per-private-chat and global limits, plus Telegram's own retry_after."""

    group_per_minute: int = 20
    chat_per_second: int = 1
    global_per_second: int = 30
    _chats: dict[int, SlidingWindow] = field(default_factory=dict)
    _blocked: dict[int, float] = field(default_factory=dict)  # chat -> until (429 retry_after)
    _global: SlidingWindow = field(init=False)

    def __post_init__(self) -> None:
        self._global = SlidingWindow(self.global_per_second, 1.0 * MARGIN)

    def _window(self, chat_id: int) -> SlidingWindow:
        found = self._chats.get(chat_id)
        if found is None:
            if is_group(chat_id):
                found = SlidingWindow(self.group_per_minute, 60.0 * MARGIN)
            else:
                found = SlidingWindow(self.chat_per_second, 1.0 * MARGIN)
            self._chats[chat_id] = found
        return found

    def room(self, chat_id: int, now: float) -> int:
        """How many messages the chat may receive right now (ignoring the global limit)."""
        if self._blocked.get(chat_id, 0.0) > now:
            return 0
        return self._window(chat_id).room(now)

    def wait(self, chat_id: int, now: float) -> float:
        """Seconds until one message may go to this chat under every limit."""
        blocked = max(0.0, self._blocked.get(chat_id, 0.0) - now)
        return max(blocked, self._window(chat_id).wait(now), self._global.wait(now))

    def global_room(self, now: float) -> int:
        """How many messages may go out right now under the global limit."""
        return self._global.room(now)

    def record(self, chat_id: int, now: float) -> None:
        """A message to this chat is being sent now."""
        self._window(chat_id).record(now)
        self._global.record(now)

    def block(self, chat_id: int, until: float) -> None:
        """Telegram said 429 with retry_after: nothing to this chat before ``until``."""
        self._blocked[chat_id] = max(until, self._blocked.get(chat_id, 0.0))

    def tidy(self, now: float) -> None:
        """Forget chats with nothing in their window (keeps memory flat over many chats)."""
        for chat_id in [c for c, w in self._chats.items() if w.room(now) == w.limit]:
            del self._chats[chat_id]
        for chat_id in [c for c, until in self._blocked.items() if until <= now]:
            del self._blocked[chat_id]
