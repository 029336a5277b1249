"""GitHub App authentication and a gidgethub client that retries the way GitHub asks it to."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import http
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import jwt
from gidgethub import BadRequest
from gidgethub import aiohttp as gh_aiohttp
from gidgethub.sansio import format_url

from bot import metrics as mx

log = logging.getLogger("loopwright.github")

Sleep = Callable[[float], Awaitable[None]]

#: Refresh an installation token this long before GitHub says it expires.
TOKEN_REFRESH_MARGIN = 300.0


class GitHubGaveUp(Exception):
    """GitHub kept failing (rate limit, 5xx, connection) after the bounded number of tries."""

    def __init__(self, method: str, url: str, tries: int, last: str) -> None:
        super().__init__(f"{method} {url}: gave up after {tries} tries ({last})")
        self.method, self.url, self.tries, self.last = method, url, tries, last


class AmbiguousWrite(GitHubGaveUp):
    """A non-idempotent call (a POST that creates something) failed in a way that does not say
    whether GitHub applied it: the connection dropped or timed out after the request was sent,
    or GitHub answered 5xx. It is not repeated: the caller re-reads the state before creating
    anything (see `bot.forge`); left unhandled, it fails the job like any other give-up."""

    def __init__(self, method: str, url: str, tries: int, last: str) -> None:
        Exception.__init__(
            self, f"{method} {url}: outcome unknown after try {tries} ({last}); not repeated"
        )
        self.method, self.url, self.tries, self.last = method, url, tries, last


#: Methods whose repetition has the effect of one call (our PATCHes send full fields).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})

#: Set while a POST that is idempotent in effect is in flight (see `idempotent_posts`).
_IDEMPOTENT_POST: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "loopwright_idempotent_post", default=False
)


@contextlib.contextmanager
def idempotent_posts() -> Iterator[None]:
    """Mark the POSTs made inside as safe to repeat after an ambiguous failure: adding labels
    (existing ones are a no-op), reactions (GitHub returns the existing one), installation
    tokens (a second one is harmless). gidgethub's `post()` has no parameter to carry this to
    `_request`, so a context variable does; it is local to the task that sets it."""
    reset = _IDEMPOTENT_POST.set(True)
    try:
        yield
    finally:
        _IDEMPOTENT_POST.reset(reset)


def _repeatable(method: str) -> bool:
    return method.upper() in IDEMPOTENT_METHODS or _IDEMPOTENT_POST.get()


#: A connection that could not be opened (refused, unresolvable, connect timeout): the request
#: never left, so any method may be tried again. (`ConnectionTimeoutError` is aiohttp >= 3.10.)
_CONNECT_TIMEOUT: Any = getattr(aiohttp, "ConnectionTimeoutError", aiohttp.ClientConnectorError)
_NEVER_SENT: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError, _CONNECT_TIMEOUT)


def _never_sent(exc: BaseException) -> bool:
    return isinstance(exc, _NEVER_SENT)


class RetryingGitHubAPI(gh_aiohttp.GitHubAPI):
    """gidgethub's aiohttp client, plus bounded retries.

    GitHub's secondary rate limits answer 403 (not only 429) with `Retry-After`; the primary limit
    answers 403/429 with `x-ratelimit-remaining: 0` and a reset epoch. 5xx and dropped
    connections get exponential backoff. A wait longer than `max_wait` is not slept: the job
    fails fast and the queue's own backoff takes over.

    Exactly once: a rate-limit answer (403/429) is a definite "not applied" and any method is
    retried after it. A dropped connection, a timeout or a 5xx is ambiguous: idempotent methods
    (GET, HEAD, PUT, PATCH, DELETE, and POSTs inside `idempotent_posts()`) are retried, any
    other POST raises `AmbiguousWrite` at once instead of being repeated blindly.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        requester: str,
        *,
        base_url: str,
        max_tries: int = 5,
        max_wait: float = 60.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(session, requester, base_url=base_url)
        self.max_tries = max(1, max_tries)
        self.max_wait = max_wait
        self._sleep_fn = sleep

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        last = ""
        repeatable = _repeatable(method)
        for attempt in range(1, self.max_tries + 1):
            try:
                status, resp_headers, resp_body = await super()._request(method, url, headers, body)
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                mx.observe_github(method, None, None)
                last = f"{type(exc).__name__}: {exc}"
                if not repeatable and not _never_sent(exc):
                    raise self._ambiguous(method, url, attempt, last) from exc
                if attempt == self.max_tries:
                    break
                await self._sleep_fn(min(self.max_wait, 0.5 * 2 ** (attempt - 1)))
                continue
            mx.observe_github(method, status, {k.lower(): v for k, v in resp_headers.items()})
            wait = self._retry_wait(status, resp_headers, attempt)
            if wait is None:
                return status, resp_headers, resp_body
            last = f"HTTP {status}"
            if status >= 500 and not repeatable:
                raise self._ambiguous(method, url, attempt, last)
            if attempt == self.max_tries or wait > self.max_wait:
                log.warning(
                    "github: %s %s gave up after %d tries (%s)",
                    method,
                    _strip_query(url),
                    attempt,
                    last,
                )
                # Let gidgethub turn the final response into its typed exception.
                return status, resp_headers, resp_body
            log.info(
                "github: %s %s answered %d; retrying in %.1fs",
                method,
                _strip_query(url),
                status,
                wait,
            )
            await self._sleep_fn(wait)
        log.warning(
            "github: %s %s gave up after %d tries (%s)",
            method,
            _strip_query(url),
            self.max_tries,
            last,
        )
        raise GitHubGaveUp(method, _strip_query(url), self.max_tries, last)

    @staticmethod
    def _ambiguous(method: str, url: str, attempt: int, last: str) -> AmbiguousWrite:
        log.info(
            "github: %s %s response lost (%s); not repeating it blindly, the caller re-reads",
            method,
            _strip_query(url),
            last,
        )
        return AmbiguousWrite(method, _strip_query(url), attempt, last)

    @staticmethod
    def _retry_wait(status: int, headers: Mapping[str, str], attempt: int) -> float | None:
        lower = {k.lower(): v for k, v in headers.items()}
        if status in (403, 429):
            if "retry-after" in lower:
                try:
                    return max(0.0, float(str(lower["retry-after"])))
                except ValueError:
                    return 60.0
            if lower.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in lower:
                try:
                    reset = float(str(lower["x-ratelimit-reset"]))
                    return max(0.0, reset - time.time()) + 1.0
                except ValueError:
                    return 60.0
            if status == 429:
                return float(min(60, 2**attempt))
            return None  # a plain 403 is a permission problem, not worth retrying
        if status >= 500:
            return min(30.0, 0.5 * float(2 ** (attempt - 1)))
        return None


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


@dataclass
class _Token:
    token: str
    expires_at: float


class GitHubApp:
    """One GitHub App: signs JWTs, mints repository-scoped installation tokens, caches them."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        app_id: int,
        private_key_pem: str,
        base_url: str,
        max_tries: int = 5,
        max_wait: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_id = app_id
        self.session = session
        self._key = private_key_pem
        self._clock = clock
        self.api = RetryingGitHubAPI(
            session,
            f"loopwright-app-{app_id}",
            base_url=base_url,
            max_tries=max_tries,
            max_wait=max_wait,
            sleep=sleep,
        )
        self._tokens: dict[tuple[int, str], _Token] = {}
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._slug: str | None = None

    def jwt(self) -> str:
        # iat is backdated 60 s against clock drift; GitHub rejects exp more than 10 min past iat.
        now = int(self._clock())
        payload = {"iat": now - 60, "exp": now + 540, "iss": str(self.app_id)}
        return jwt.encode(payload, self._key, algorithm="RS256")

    async def bot_login(self) -> str:
        """The login our comments carry (`<slug>[bot]`), to recognise our own sticky comments."""
        if self._slug is None:
            app = await self.api.getitem("/app", jwt=self.jwt())
            self._slug = str(app["slug"])
        return f"{self._slug}[bot]"

    async def installation_token(self, installation_id: int, repo: str) -> str:
        """A token for one installation, scoped to the one repository (`owner/name`)."""
        key = (installation_id, repo)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached and cached.expires_at - self._clock() > TOKEN_REFRESH_MARGIN:
                return cached.token
            # Minting a second token when the first one's response was lost is harmless.
            with idempotent_posts():
                data = await self.api.post(
                    "/app/installations/{installation_id}/access_tokens",
                    url_vars={"installation_id": str(installation_id)},
                    data={"repositories": [repo.split("/", 1)[1]]},
                    jwt=self.jwt(),
                )
            expires = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
            self._tokens[key] = _Token(str(data["token"]), expires.timestamp())
            return str(data["token"])

    def for_repo(self, installation_id: int, repo: str) -> RepoClient:
        return RepoClient(self, installation_id, repo)


class RepoClient:
    """Calls scoped to one repository with a fresh-enough installation token.

    Paths are relative templates; `owner` and `repo` are filled in here so callers cannot aim a
    call at another repository by accident.
    """

    def __init__(self, app: GitHubApp, installation_id: int, repo: str) -> None:
        self.app = app
        self.installation_id = installation_id
        self.repo = repo
        self.owner, self.name = repo.split("/", 1)

    async def token(self) -> str:
        return await self.app.installation_token(self.installation_id, self.repo)

    def _vars(self, url_vars: Mapping[str, Any] | None) -> dict[str, str]:
        merged = {"owner": self.owner, "repo": self.name}
        merged.update({k: str(v) for k, v in (url_vars or {}).items()})
        return merged

    async def get(self, path: str, url_vars: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        return await self.app.api.getitem(
            path, url_vars=self._vars(url_vars), oauth_token=await self.token(), **kw
        )

    async def getiter(
        self,
        path: str,
        url_vars: Mapping[str, Any] | None = None,
        *,
        iterable_key: str = "items",
    ) -> AsyncIterator[Any]:
        """Every item over all pages; `iterable_key` names the list in an object response
        (`jobs`, `workflow_runs`, `check_runs`; search results use `items`)."""
        token = await self.token()
        async for item in self.app.api.getiter(
            path, url_vars=self._vars(url_vars), oauth_token=token, iterable_key=iterable_key
        ):
            yield item

    async def post(
        self,
        path: str,
        url_vars: Mapping[str, Any] | None = None,
        *,
        data: Any,
        idempotent: bool = False,
    ) -> Any:
        """POST once. After a dropped connection, a timeout or a 5xx it raises `AmbiguousWrite`
        instead of repeating the call, unless `idempotent=True` says repeating it is harmless
        (adding labels, a reaction)."""
        token = await self.token()
        with idempotent_posts() if idempotent else contextlib.nullcontext():
            return await self.app.api.post(
                path, url_vars=self._vars(url_vars), data=data, oauth_token=token
            )

    async def patch(
        self, path: str, url_vars: Mapping[str, Any] | None = None, *, data: Any
    ) -> Any:
        return await self.app.api.patch(
            path, url_vars=self._vars(url_vars), data=data, oauth_token=await self.token()
        )

    async def delete(self, path: str, url_vars: Mapping[str, Any] | None = None) -> None:
        await self.app.api.delete(
            path, url_vars=self._vars(url_vars), oauth_token=await self.token()
        )


@dataclass(frozen=True)
class Download:
    data: bytes
    #: Bytes dropped from the middle to stay under the cap (head and tail are kept).
    bytes_cut: int = 0


#: What a capped download keeps from the start; the rest of the cap goes to the tail, where a
#: failing log keeps its errors.
DOWNLOAD_HEAD = 1024 * 1024


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> Download:
    head = bytearray()
    tail = bytearray()
    tail_cap = max(0, max_bytes - DOWNLOAD_HEAD)
    total = 0
    async for chunk in resp.content.iter_chunked(256 * 1024):
        total += len(chunk)
        room = min(DOWNLOAD_HEAD, max_bytes) - len(head)
        if room > 0:
            head += chunk[:room]
            chunk = chunk[room:]
        if chunk and tail_cap:
            tail += chunk
            if len(tail) > 2 * tail_cap:
                del tail[: len(tail) - tail_cap]
    if len(tail) > tail_cap:
        del tail[: len(tail) - tail_cap]
    kept = len(head) + len(tail)
    return Download(bytes(head + tail), bytes_cut=total - kept)


async def download_redirected(
    client: RepoClient, path: str, url_vars: Mapping[str, Any] | None, *, max_bytes: int
) -> Download:
    """GET an API endpoint that answers with a redirect to storage (workflow and job logs),
    then fetch the target WITHOUT our token: the storage host is another origin, and the URL
    it gets is already signed. At most `max_bytes` are kept (the first MiB and the last rest).
    """
    api = client.app.api
    url = format_url(path, client._vars(url_vars), base_url=api.base_url)
    headers = {
        "Authorization": f"token {await client.token()}",
        "Accept": "application/vnd.github+json",
        "User-Agent": api.requester,
    }
    session = client.app.session
    async with session.get(url, headers=headers, allow_redirects=False) as resp:
        if resp.status in (301, 302, 303, 307, 308):
            location = resp.headers.get("Location")
            if not location:
                raise BadRequest(http.HTTPStatus(502), "redirect without a Location")
        elif resp.status == 200:
            return await _read_capped(resp, max_bytes)
        else:
            body = (await resp.text(errors="replace"))[:300]
            raise BadRequest(http.HTTPStatus(resp.status), f"{_strip_query(url)}: {body}")
    # A fresh request with no Authorization header; aiohttp adds none of its own.
    async with session.get(location, headers={"User-Agent": api.requester}) as resp:
        if resp.status != 200:
            raise BadRequest(http.HTTPStatus(resp.status), f"log storage answered {resp.status}")
        return await _read_capped(resp, max_bytes)
