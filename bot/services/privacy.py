"""What may be said in a group: no phone numbers, ID numbers or full room numbers.

A group of a few hundred neighbours is not the place for "3号楼2单元501 王阿姨 138…".
Staff see the resident's words in private chat; anything the bot posts in a group passes
through :func:`redact` first, including what staff typed (a plan that says "请联系138…").
"""

from __future__ import annotations

import re

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{6}(?:19|20)\d{2}\d{7}[0-9Xx](?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)")
# A room after a unit or building ("2单元501", "3号楼501室", "3-2-501"), or any "501室/号房".
_ROOM_AFTER = re.compile(r"((?:单元|号楼|栋|幢|座)\s*)(\d{3,4})(?:室|号|房)?")
_ROOM_DASHED = re.compile(r"(?<!\d)(\d{1,2}-\d{1,2}-)(\d{3,4})(?!\d)")
_ROOM_SUFFIX = re.compile(r"(?<!\d)\d{3,4}(?:室|号房)")


def redact(text: str) -> str:
    """The text with phone numbers, ID numbers and room numbers masked."""
    text = _ID_NUMBER.sub("[身份证号已隐藏]", text)
    text = _PHONE.sub("[电话已隐藏]", text)
    text = _LANDLINE.sub("[电话已隐藏]", text)
    text = _ROOM_AFTER.sub(r"\1***", text)
    text = _ROOM_DASHED.sub(r"\1***", text)
    return _ROOM_SUFFIX.sub("***室", text)


def is_group(chat_id: int) -> bool:
    """Telegram group and supergroup ids are negative; private chats are the user's id."""
    return chat_id < 0
