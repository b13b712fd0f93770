"""The Bot API's HTTP transport for python-telegram-bot, on aiohttp.

python-telegram-bot builds each request (parameters, files) and reads each answer (errors,
429 ``retry_after``, parsing); the transport under it only moves bytes. Its default transport
is httpx, which costs about 1 ms of CPU per request; aiohttp, already here for the web admin,
the webhook and the sandbox, does the same in about 0.3-0.4 ms (benchmarks/load.py; figures in
BENCHMARKS.md). At one request per acknowledgement, per ping and per long poll, that is a
good part of what the bot spends on a message.

Behaviour kept from python-telegram-bot's httpx transport:
- timeouts: ``connect`` (TCP connect), ``read`` (between bytes of the answer), ``pool``
  (waiting for a free connection, counted together with connecting); a timeout raises
  ``TimedOut``, any other transport failure ``NetworkError`` (the sender retries both);
- the same defaults (5 s; 1 s for the pool) and connection pool sizes;
- proxies from ``HTTPS_PROXY`` / ``HTTP_PROXY`` (and ``NO_PROXY``), as httpx reads them.
  They are read once per host, not per request: aiohttp's ``trust_env`` would look at the
  environment and parse ``~/.netrc`` in a worker thread for every request;
- files go as multipart form data, everything else as a urlencoded form.
aiohttp has no separate write timeout: a request whose body cannot be written is bounded by
the read timeout of its answer.
"""

from __future__ import annotations

import logging
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

logger = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 5.0
DEFAULT_POOL_TIMEOUT = 1.0


def _seconds(value: Any, default: float | None) -> float | None:
    """A timeout python-telegram-bot passed: DEFAULT_NONE means ours; None means none."""
    return default if isinstance(value, DefaultValue) else value


class AiohttpRequest(BaseRequest):
    """python-telegram-bot's ``BaseRequest`` over one aiohttp client session."""

    def __init__(
        self,
        connection_pool_size: int = 1,
        *,
        read_timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout: float | None = DEFAULT_TIMEOUT,
        pool_timeout: float | None = DEFAULT_POOL_TIMEOUT,
    ) -> None:
        if connection_pool_size < 1:
            raise ValueError("connection_pool_size must be at least 1")
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[str, str] = {}
        self._proxy_for: dict[tuple[str, str], str | None] = {}  # (scheme, host) -> proxy

    @property
    def read_timeout(self) -> float | None:
        """The read timeout used when a call does not name one."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the client session (on the running event loop)."""
        if self._session is None or self._session.closed:
            self._proxies = urllib.request.getproxies_environment()
            self._proxy_for = {}
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size)
            )

    async def shutdown(self) -> None:
        """Close the client session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(  # noqa: PLR0917 (the signature is BaseRequest's)
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; the status and body of the answer."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read = _seconds(read_timeout, self._read_timeout)
        connect = _seconds(connect_timeout, self._connect_timeout)
        pool = _seconds(pool_timeout, self._pool_timeout)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            sock_read=read,
        )
        data: Any = None
        if request_data is not None:
            data = request_data.json_parameters
            if request_data.contains_files:
                data = _multipart(data, request_data)
        try:
            async with self._session.request(
                method, url, data=data, timeout=timeout, proxy=self._proxy(url)
            ) as answer:
                body = await answer.read()
                logger.debug("%s %s: %d", method, url.rsplit("/", 1)[-1], answer.status)
                return answer.status, body
        except TimeoutError as exc:  # asyncio's, which aiohttp's timeouts are
            raise TimedOut from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc

    def _proxy(self, url: str) -> str | None:
        """The proxy the environment names for this URL's scheme and host, if any."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxy_for:
            proxy = self._proxies.get(parts.scheme)
            bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
            if proxy and bypass(key[1], self._proxies):
                proxy = None
            self._proxy_for[key] = proxy
        return self._proxy_for[key]


def _multipart(fields: dict[str, str], request_data: RequestData) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form
