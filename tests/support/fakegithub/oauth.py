"""GitHub's OAuth web flow for an App's user-to-server tokens (not REST, so not in
operations.json): `GET /login/oauth/authorize` shows a page where the test's browser says who it
is and authorises; GitHub then redirects to the App's callback with a one-use `code`, which the
App exchanges at `POST /login/oauth/access_token` (client id + secret) for a `ghu_` token. The
token then works on the user operations in `routes/users.py` (and nowhere an installation token
is required)."""

from __future__ import annotations

import html
import secrets
import string
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

USER_TOKEN_PREFIX = "ghu_"


@dataclass
class OAuthGrant:
    login: str
    client_id: str
    redirect_uri: str


class OAuth:
    """The OAuth web flow (a mixin of FakeGitHub)."""

    oauth_client_id: str
    oauth_client_secret: str
    oauth_codes: dict[str, OAuthGrant]
    user_tokens: dict[str, str]
    # Every authorisation a browser made and every exchange tried, for assertions.
    oauth_log: list[str]

    def init_oauth(self) -> None:
        self.oauth_client_id = f"Iv1.{secrets.token_hex(8)}"
        self.oauth_client_secret = secrets.token_hex(20)
        self.oauth_codes = {}
        self.user_tokens = {}
        self.oauth_log = []

    def add_oauth_routes(self, app: web.Application) -> None:
        app.router.add_get("/login/oauth/authorize", self._oauth_page)
        app.router.add_post("/login/oauth/authorize", self._oauth_authorize)
        app.router.add_post("/login/oauth/access_token", self._oauth_token)
        # What a browser on the authorize page asks for by itself (not a REST call).
        app.router.add_get("/favicon.ico", _no_icon)

    def user_token(self, login: str) -> str:
        """Mint a user-to-server token directly, for test setup."""
        alphabet = string.ascii_letters + string.digits
        token = USER_TOKEN_PREFIX + "".join(secrets.choice(alphabet) for _ in range(36))
        self.user_tokens[token] = login
        return token

    def user_of(self, request: web.Request) -> str | None:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        return self.user_tokens.get(credential.strip())

    async def _oauth_page(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("client_id") != self.oauth_client_id:
            return web.Response(status=404, text="Not Found")
        fields = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(q.get(k, ""))}">'
            for k in ("client_id", "redirect_uri", "state")
        )
        page = (
            "<!doctype html><title>Authorize</title><h1>Sign in to FakeGitHub</h1>"
            '<form method="post" action="/login/oauth/authorize">'
            f"{fields}<label>Username <input id=login_field name=login></label>"
            '<button id="authorize" type="submit">Authorize</button></form>'
        )
        return web.Response(text=page, content_type="text/html")

    async def _oauth_authorize(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        client_id, redirect_uri = str(form.get("client_id", "")), str(form.get("redirect_uri", ""))
        login = str(form.get("login", "")).strip()
        if client_id != self.oauth_client_id or not login or not redirect_uri:
            return web.Response(status=422, text="bad authorization request")
        code = secrets.token_hex(10)
        self.oauth_codes[code] = OAuthGrant(login, client_id, redirect_uri)
        self.oauth_log.append(f"authorize {login}")
        query = urlencode({"code": code, "state": str(form.get("state", ""))})
        raise web.HTTPFound(f"{redirect_uri}?{query}")

    async def _oauth_token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        code = str(form.get("code", ""))
        grant = self.oauth_codes.pop(code, None)  # single use, as GitHub's
        self.oauth_log.append(f"exchange {'ok' if grant else 'bad code'}")
        if (
            form.get("client_id") != self.oauth_client_id
            or form.get("client_secret") != self.oauth_client_secret
        ):
            return web.json_response(
                {
                    "error": "incorrect_client_credentials",
                    "error_description": "The client_id and/or client_secret passed are incorrect.",
                }
            )
        redirect_uri = form.get("redirect_uri")
        if grant is None or (redirect_uri and redirect_uri != grant.redirect_uri):
            # GitHub answers 200 with an error object, not an HTTP error.
            return web.json_response(
                {
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                }
            )
        token = self.user_token(grant.login)
        return web.json_response({"access_token": token, "token_type": "bearer", "scope": ""})


async def _no_icon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=404)
