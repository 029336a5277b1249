"""Sign-in for the dashboard: the App's GitHub OAuth (user-to-server) flow, signed session
cookies, and which repositories the signed-in user may see.

A user sees a repository's runs only when the App is installed on it and the user can write to
it (push, maintain or admin), as GitHub answers `GET /user/installations` and
`GET /user/installations/{id}/repositories` with the user's own token. The answer is kept for
`REPOS_TTL` seconds, then asked again, so a revoked permission stops showing within minutes.

Sessions live in this process's memory (`Sessions`); the cookie holds a random id and its
HMAC under the session key, nothing else. A restart (or another replica) means signing in again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
from gidgethub import GitHubException
from gidgethub.aiohttp import GitHubAPI

#: How long a user's list of writable repositories is trusted before GitHub is asked again.
REPOS_TTL = 300.0
#: How long a session lasts without being used.
SESSION_IDLE = 8 * 3600.0
SESSION_COOKIE = "loopwright_session"
STATE_COOKIE = "loopwright_oauth_state"
_WRITE = ("admin", "maintain", "push")


class SignInError(Exception):
    """The OAuth exchange or GitHub's user answer failed; the message says what to do."""


@dataclass
class Session:
    login: str
    token: str
    repos: frozenset[str] = frozenset()
    checked_at: float = 0.0
    used_at: float = field(default_factory=time.time)
    #: Sent with every form that changes something (a job retried) and checked on POST.
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))


class Sessions:
    """Signed session ids → `Session`, in memory."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)
        self._by_id: dict[str, Session] = {}

    def sign(self, value: str) -> str:
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{value}.{mac}"

    def unsign(self, signed: str | None) -> str | None:
        if not signed or "." not in signed:
            return None
        value, _, _mac = signed.rpartition(".")
        return value if hmac.compare_digest(self.sign(value), signed) else None

    def create(self, login: str, token: str) -> tuple[str, Session]:
        """A new session; returns the cookie value and the session."""
        self._expire()
        sid = secrets.token_urlsafe(24)
        session = Session(login=login, token=token)
        self._by_id[sid] = session
        return self.sign(sid), session

    def get(self, cookie: str | None) -> Session | None:
        sid = self.unsign(cookie)
        session = self._by_id.get(sid) if sid else None
        if session is None:
            return None
        if time.time() - session.used_at > SESSION_IDLE:
            self._by_id.pop(sid or "", None)
            return None
        session.used_at = time.time()
        return session

    def drop(self, cookie: str | None) -> None:
        sid = self.unsign(cookie)
        if sid:
            self._by_id.pop(sid, None)

    def _expire(self) -> None:
        now = time.time()
        for sid in [k for k, s in self._by_id.items() if now - s.used_at > SESSION_IDLE]:
            del self._by_id[sid]


@dataclass(frozen=True)
class OAuthApp:
    """The App's OAuth side: where GitHub's web flow and API are, and the App's credentials."""

    client_id: str
    client_secret: str
    web_url: str  # https://github.com (or an Enterprise host)
    api_url: str  # https://api.github.com

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = urlencode(
            {"client_id": self.client_id, "redirect_uri": redirect_uri, "state": state}
        )
        return f"{self.web_url.rstrip('/')}/login/oauth/authorize?{query}"

    async def exchange(self, session: aiohttp.ClientSession, code: str, redirect_uri: str) -> str:
        """The user's access token for `code` (`POST /login/oauth/access_token`)."""
        url = f"{self.web_url.rstrip('/')}/login/oauth/access_token"
        form = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
        }
        try:
            async with session.post(url, data=form, headers={"Accept": "application/json"}) as r:
                body = await r.json(content_type=None) if r.status == 200 else {}
        except (aiohttp.ClientError, ValueError) as exc:
            raise SignInError(f"cannot reach GitHub at {self.web_url}: {exc}") from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            why = body.get("error_description") or body.get("error") if body else None
            raise SignInError(f"GitHub refused the sign-in code ({why or 'no access token'})")
        return str(token)

    def client(self, session: aiohttp.ClientSession, token: str) -> GitHubAPI:
        return GitHubAPI(session, "loopwright-ui", oauth_token=token, base_url=self.api_url)

    async def login_of(self, session: aiohttp.ClientSession, token: str) -> str:
        try:
            user = await self.client(session, token).getitem("/user")
        except (GitHubException, aiohttp.ClientError) as exc:
            raise SignInError(f"GitHub did not answer who signed in: {exc}") from None
        return str(user["login"])

    async def writable_repos(self, session: aiohttp.ClientSession, token: str) -> frozenset[str]:
        """Repositories with the App installed that the user can write to."""
        gh = self.client(session, token)
        out: set[str] = set()
        installations = [
            inst async for inst in gh.getiter("/user/installations", iterable_key="installations")
        ]
        for inst in installations:
            async for repo in gh.getiter(
                "/user/installations{/installation_id}/repositories",
                {"installation_id": inst["id"]},
                iterable_key="repositories",
            ):
                perms = repo.get("permissions") or {}
                if any(perms.get(p) for p in _WRITE):
                    out.add(str(repo["full_name"]))
        return frozenset(out)


async def refresh_repos(
    app: OAuthApp, http: aiohttp.ClientSession, session: Session, *, force: bool = False
) -> frozenset[str]:
    """`session.repos`, asked of GitHub again once older than `REPOS_TTL`. When GitHub cannot
    be asked, the user sees nothing (never a stale wider list)."""
    if force or time.time() - session.checked_at > REPOS_TTL:
        try:
            session.repos = await app.writable_repos(http, session.token)
        except (GitHubException, aiohttp.ClientError):
            session.repos = frozenset()
        session.checked_at = time.time()
    return session.repos


def allowed(session: Session | None, repo: str) -> bool:
    return session is not None and repo in session.repos


def visible(session: Session | None, repos: Sequence[str]) -> list[str]:
    return [r for r in repos if allowed(session, r)]
