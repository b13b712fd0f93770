"""The sandbox's in-memory Telegram: users, chats, messages and the update queue."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 4096


class BotApiError(Exception):
    """An error the Bot API would answer with (code and description as Telegram words them)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass
class User:
    """A Telegram user as the sandbox knows it."""

    id: int
    first_name: str
    is_bot: bool = False
    username: str | None = None
    kind: str = "resident"  # resident | staff | bot
    label: str = ""

    def as_api(self) -> dict[str, Any]:
        """The Bot API ``User`` object."""
        out: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            out["username"] = self.username
        return out


@dataclass
class Chat:
    """A group or a private chat with the bot."""

    id: int
    type: str  # supergroup | private
    title: str

    def as_api(self, users: dict[int, User]) -> dict[str, Any]:
        """The Bot API ``Chat`` object."""
        if self.type == "private":
            user = users[self.id]
            return {"id": self.id, "type": "private", "first_name": user.first_name}
        return {"id": self.id, "type": self.type, "title": self.title}


@dataclass
class Message:
    """A message in a chat, from a person or from the bot."""

    chat_id: int
    message_id: int
    from_id: int
    text: str
    date: int
    reply_to: int | None = None
    reply_markup: dict[str, Any] | None = None
    edited: bool = False
    version: int = 0
    entities: list[dict[str, Any]] | None = None  # e.g. text mentions
    at: float = field(default_factory=time.monotonic)  # when the sandbox got it (benchmarks)


@dataclass
class Toast:
    """A callback answer, shown to the person who pressed the button."""

    user_id: int
    text: str
    version: int


@dataclass
class World:
    """Everything the sandbox remembers. Not thread-safe: one event loop owns it."""

    bot: User
    users: dict[int, User] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    messages: dict[int, list[Message]] = field(default_factory=dict)
    toasts: list[Toast] = field(default_factory=list)
    version: int = 0
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _next_update_id: int = 1
    _message_ids: dict[int, itertools.count[int]] = field(default_factory=dict)
    _callback_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _pressed_by: dict[str, int] = field(default_factory=dict)  # callback id -> who pressed
    # Message ids continue across sandbox restarts, as Telegram's do: the bot's database
    # keys tickets by (chat, message id), so reused ids would look like redelivered updates.
    first_message_id: int = field(default_factory=lambda: int(time.time() * 1000) % 10**12)
    closed: bool = False
    sent_log: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, chat) per send
    _updates_changed: asyncio.Condition | None = None
    _page_changed: asyncio.Condition | None = None

    # -- set-up -------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        """Make a person known to the sandbox."""
        self.users[user.id] = user

    def add_group(self, chat_id: int, title: str) -> None:
        """Create a group the bot is a member of."""
        self.chats[chat_id] = Chat(chat_id, "supergroup", title)
        self.messages.setdefault(chat_id, [])

    # -- helpers ------------------------------------------------------------------------

    def _conditions(self) -> tuple[asyncio.Condition, asyncio.Condition]:
        if self._updates_changed is None or self._page_changed is None:
            self._updates_changed = asyncio.Condition()
            self._page_changed = asyncio.Condition()
        return self._updates_changed, self._page_changed

    def _bump(self) -> int:
        self.version += 1
        return self.version

    async def _notify(self, updates: bool) -> None:
        updates_changed, page_changed = self._conditions()
        if updates:
            async with updates_changed:
                updates_changed.notify_all()
        async with page_changed:
            page_changed.notify_all()

    def _new_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(self.first_message_id)))

    def find(self, chat_id: int, message_id: int) -> Message | None:
        """A message by chat and id."""
        for message in self.messages.get(chat_id, []):
            if message.message_id == message_id:
                return message
        return None

    def message_api(self, message: Message, nested: bool = True) -> dict[str, Any]:
        """The Bot API ``Message`` object."""
        sender = self.bot if message.from_id == self.bot.id else self.users[message.from_id]
        out: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": self.chats[message.chat_id].as_api(self.users),
            "from": sender.as_api(),
            "text": message.text,
        }
        if message.edited:
            out["edit_date"] = int(time.time())
        if message.reply_markup:
            out["reply_markup"] = message.reply_markup
        if message.entities:
            out["entities"] = message.entities
        if nested and message.reply_to is not None:
            original = self.find(message.chat_id, message.reply_to)
            if original is not None:
                out["reply_to_message"] = self.message_api(original, nested=False)
        return out

    def _push_update(self, payload: dict[str, Any]) -> None:
        self._updates.append({"update_id": self._next_update_id, **payload})
        self._next_update_id += 1

    # -- what people do -----------------------------------------------------------------

    def open_private(self, user_id: int) -> None:
        """As if the person had pressed Start in a private chat with the bot long ago."""
        user = self.users[user_id]
        if user_id not in self.chats:
            self.chats[user_id] = Chat(user_id, "private", user.first_name)
            self.messages.setdefault(user_id, [])

    async def user_says(
        self, user_id: int, chat_id: int, text: str, reply_to: int | None = None
    ) -> Message:
        """A person posts a text message; the bot receives it as an update."""
        user = self.users.get(user_id)
        if user is None:
            raise BotApiError(400, "Bad Request: unknown user")
        if not text.strip():
            raise BotApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise BotApiError(400, "Bad Request: message is too long")
        if chat_id == user_id and chat_id not in self.chats:
            self.chats[chat_id] = Chat(chat_id, "private", user.first_name)
            self.messages.setdefault(chat_id, [])
        if chat_id not in self.chats:
            raise BotApiError(400, "Bad Request: chat not found")
        if reply_to is not None and self.find(chat_id, reply_to) is None:
            reply_to = None
        message = Message(
            chat_id=chat_id,
            message_id=self._new_message_id(chat_id),
            from_id=user_id,
            text=text,
            date=int(time.time()),
            reply_to=reply_to,
            version=self._bump(),
        )
        self.messages[chat_id].append(message)
        payload = self.message_api(message)
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            payload["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        self._push_update({"message": payload})
        await self._notify(updates=True)
        return message

    async def user_edits(self, user_id: int, chat_id: int, message_id: int, text: str) -> None:
        """A person edits a message they sent; the bot receives an ``edited_message``."""
        message = self.find(chat_id, message_id)
        if message is None or message.from_id != user_id:
            raise BotApiError(400, "Bad Request: message can't be edited")
        self._check_text(text)
        message.text = text
        message.edited = True
        message.version = self._bump()
        self._push_update({"edited_message": self.message_api(message)})
        await self._notify(updates=True)

    async def deliver_raw(self, update: dict[str, Any]) -> None:
        """Hand the bot any update as given (photos, service messages, a redelivery): for
        tests of what Telegram may send that the page cannot produce."""
        self._push_update(update)
        await self._notify(updates=True)

    async def user_presses(self, user_id: int, chat_id: int, message_id: int, data: str) -> str:
        """A person presses an inline button under a bot message."""
        user = self.users.get(user_id)
        message = self.find(chat_id, message_id)
        if user is None or message is None:
            raise BotApiError(400, "Bad Request: message not found")
        callback_id = f"cb{next(self._callback_ids)}"
        self._pressed_by[callback_id] = user_id
        self._push_update(
            {
                "callback_query": {
                    "id": callback_id,
                    "from": user.as_api(),
                    "message": self.message_api(message),
                    "chat_instance": f"ci{chat_id}",
                    "data": data,
                }
            }
        )
        await self._notify(updates=True)
        return callback_id

    # -- what the bot does (Bot API methods) ---------------------------------------------

    def _check_target(self, chat_id: int) -> None:
        if chat_id not in self.chats:
            if chat_id in self.users:
                raise BotApiError(403, "Forbidden: bot can't initiate conversation with a user")
            raise BotApiError(400, "Bad Request: chat not found")

    @staticmethod
    def _check_text(text: str) -> None:
        if not text.strip():
            raise BotApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT:
            raise BotApiError(400, "Bad Request: message is too long")

    async def bot_sends(
        self,
        chat_id: int,
        text: str,
        reply_to: int | None = None,
        reply_markup: dict[str, Any] | None = None,
        entities: list[dict[str, Any]] | None = None,
        *,
        allow_sending_without_reply: bool = False,
    ) -> dict[str, Any]:
        """``sendMessage``."""
        self._check_target(chat_id)
        self._check_text(text)
        if reply_to is not None and self.find(chat_id, reply_to) is None:
            if not allow_sending_without_reply:
                raise BotApiError(400, "Bad Request: message to be replied not found")
            reply_to = None
        message = Message(
            chat_id=chat_id,
            message_id=self._new_message_id(chat_id),
            from_id=self.bot.id,
            text=text,
            date=int(time.time()),
            reply_to=reply_to,
            reply_markup=reply_markup or None,
            version=self._bump(),
            entities=entities or None,
        )
        self.messages[chat_id].append(message)
        self.sent_log.append((time.monotonic(), chat_id))
        await self._notify(updates=False)
        return self.message_api(message)

    async def bot_edits(
        self,
        chat_id: int,
        message_id: int,
        text: str | None,
        reply_markup: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """``editMessageText`` and ``editMessageReplyMarkup``."""
        self._check_target(chat_id)
        message = self.find(chat_id, message_id)
        if message is None:
            raise BotApiError(400, "Bad Request: message to edit not found")
        if message.from_id != self.bot.id:
            raise BotApiError(400, "Bad Request: message can't be edited")
        if text is not None:
            self._check_text(text)
            if text == message.text and reply_markup == message.reply_markup:
                raise BotApiError(400, "Bad Request: message is not modified")
            message.text = text
        message.reply_markup = reply_markup or None
        message.edited = True
        message.version = self._bump()
        await self._notify(updates=False)
        return self.message_api(message)

    async def bot_answers_callback(self, callback_id: str, text: str) -> None:
        """``answerCallbackQuery``: the text pops up for the presser."""
        user_id = self._pressed_by.pop(callback_id, None)
        if text and user_id is not None:
            self.toasts.append(Toast(user_id, text, self._bump()))
            await self._notify(updates=False)

    async def get_updates(
        self, offset: int, limit: int, wait_seconds: float
    ) -> list[dict[str, Any]]:
        """``getUpdates`` with Telegram's offset semantics and long polling."""
        # Confirming: everything below the offset is forgotten, as Telegram does.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        updates_changed, _ = self._conditions()
        if not self._updates and wait_seconds > 0:
            async with updates_changed:
                try:
                    await asyncio.wait_for(
                        updates_changed.wait_for(lambda: bool(self._updates) or self.closed),
                        wait_seconds,
                    )
                except TimeoutError:
                    return []
        return self._updates[: max(1, min(limit, 100))]

    async def close(self) -> None:
        """Release every long poll now, so the server can shut down without waiting."""
        self.closed = True
        await self._notify(updates=True)

    def pending_updates(self) -> int:
        """Updates not yet confirmed by the bot."""
        return len(self._updates)

    # -- what the page sees -------------------------------------------------------------

    def changes_since(self, since: int) -> dict[str, Any]:
        """Messages and toasts changed after version ``since``."""
        changed = [
            self._page_message(m)
            for chat in self.messages.values()
            for m in chat
            if m.version > since
        ]
        changed.sort(key=lambda m: m["version"])
        toasts = [
            {"user_id": t.user_id, "text": t.text, "version": t.version}
            for t in self.toasts
            if t.version > since
        ]
        return {"version": self.version, "messages": changed, "toasts": toasts}

    async def wait_changes(self, since: int, wait_seconds: float) -> dict[str, Any]:
        """Long-poll for the page: wait until something changed after ``since``."""
        _, page_changed = self._conditions()
        if self.version <= since:
            async with page_changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        page_changed.wait_for(lambda: self.version > since or self.closed),
                        wait_seconds,
                    )
        return self.changes_since(since)

    def _page_message(self, message: Message) -> dict[str, Any]:
        sender = self.bot if message.from_id == self.bot.id else self.users.get(message.from_id)
        buttons = [
            [
                {"text": b.get("text", ""), "data": b.get("callback_data"), "url": b.get("url")}
                for b in row
            ]
            for row in (message.reply_markup or {}).get("inline_keyboard", [])
        ]
        return {
            "chat_id": message.chat_id,
            "message_id": message.message_id,
            "from_id": message.from_id,
            "from_name": sender.first_name if sender else str(message.from_id),
            "is_bot": message.from_id == self.bot.id,
            "text": message.text,
            "date": message.date,
            "reply_to": message.reply_to,
            "buttons": buttons,
            "mentions": [
                e["user"]["id"]
                for e in message.entities or []
                if e.get("type") == "text_mention" and isinstance(e.get("user"), dict)
            ],
            "edited": message.edited,
            "version": message.version,
        }
