"""The dashboard's routes (see `bot.ui`)."""

from __future__ import annotations

import calendar
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jinja2
from aiohttp import web

from bot.settings import Settings
from bot.store import Store
from bot.text import Redactor
from bot.ui.auth import (
    SESSION_COOKIE,
    STATE_COOKIE,
    OAuthApp,
    Session,
    Sessions,
    SignInError,
    allowed,
    refresh_repos,
)

log = logging.getLogger(__name__)

PREFIX = "/ui"
_TEMPLATES = Path(__file__).parent / "templates"
#: Per-page cap on rows; the filters narrow it.
RUN_LIMIT = 200
SPEND_DAYS = 30

StoreGetter = Callable[[], Store | None]


class Dashboard:
    def __init__(self, settings: Settings, store: StoreGetter) -> None:
        self.settings = settings
        self._store = store
        secret = settings.ui_session_secret
        self.sessions = Sessions(secret.get_secret_value().encode() if secret else None)
        client_secret = settings.github_client_secret
        self.oauth: OAuthApp | None = None
        if settings.github_client_id and client_secret and client_secret.get_secret_value():
            self.oauth = OAuthApp(
                client_id=settings.github_client_id,
                client_secret=client_secret.get_secret_value(),
                web_url=settings.git_base_url,
                api_url=settings.github_api_url,
            )
        self.redact = Redactor(settings.secret_values())
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(_TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["clean"] = lambda v: self.redact("" if v is None else str(v))
        self.env.filters["when"] = _when
        self.env.filters["usd"] = lambda v: f"${float(v or 0):.4f}"
        self.http: aiohttp.ClientSession | None = None

    @property
    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise web.HTTPServiceUnavailable(text="the store is not open yet; try again\n")
        return store

    def render(
        self, name: str, request: web.Request, session: Session | None, **ctx: Any
    ) -> web.Response:
        html = self.env.get_template(name).render(
            prefix=PREFIX, session=session, path=request.path, **ctx
        )
        return web.Response(text=html, content_type="text/html")

    def redirect_uri(self, request: web.Request) -> str:
        base = self.settings.ui_base_url.rstrip("/") or f"{request.scheme}://{request.host}"
        return f"{base}{PREFIX}/callback"

    async def session_of(self, request: web.Request) -> Session | None:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is not None and self.oauth is not None and self.http is not None:
            await refresh_repos(self.oauth, self.http, session)
        return session


_UI = web.AppKey("ui", Dashboard)


def _when(ts: Any) -> str:
    if ts is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(ts)))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _redirect(location: str, status: int = 302) -> web.Response:
    """A redirect that can carry cookies (aiohttp's HTTPFound is raised, not returned)."""
    return web.Response(status=status, headers={"Location": location})


def _signed_in(
    handler: Callable[[web.Request, Dashboard, Session], Awaitable[web.StreamResponse]],
) -> Handler:
    """Nothing behind this without a session: the sign-in page instead (no data, no hint)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        ui = request.app[_UI]
        if ui.oauth is None:
            return web.Response(
                status=503,
                text="the dashboard needs LOOPWRIGHT_GITHUB_CLIENT_ID and "
                "LOOPWRIGHT_GITHUB_CLIENT_SECRET (the App's OAuth credentials; "
                "`loopwright setup` writes them)\n",
            )
        session = await ui.session_of(request)
        if session is None:
            return ui.render("login.html", request, None)
        return await handler(request, ui, session)

    return wrapped


async def login(request: web.Request) -> web.StreamResponse:
    ui = request.app[_UI]
    if ui.oauth is None:
        return web.Response(status=503, text="the dashboard's OAuth is not configured\n")
    state = secrets.token_urlsafe(24)
    response = _redirect(ui.oauth.authorize_url(ui.redirect_uri(request), state))
    response.set_cookie(
        STATE_COOKIE, ui.sessions.sign(state), max_age=600, httponly=True, samesite="Lax"
    )
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    ui = request.app[_UI]
    if ui.oauth is None or ui.http is None:
        return web.Response(status=503, text="the dashboard's OAuth is not configured\n")
    state = ui.sessions.unsign(request.cookies.get(STATE_COOKIE))
    if not state or state != request.query.get("state"):
        return web.Response(status=400, text="sign-in state did not match: start again\n")
    code = request.query.get("code", "")
    if not code:
        return web.Response(status=400, text="GitHub sent no sign-in code\n")
    try:
        token = await ui.oauth.exchange(ui.http, code, ui.redirect_uri(request))
        login_name = await ui.oauth.login_of(ui.http, token)
    except SignInError as exc:
        return web.Response(status=403, text=f"{exc}\n")
    cookie, session = ui.sessions.create(login_name, token)
    await refresh_repos(ui.oauth, ui.http, session, force=True)
    log.info("dashboard: %s signed in (%d repositories)", login_name, len(session.repos))
    response = _redirect(f"{PREFIX}/")
    response.del_cookie(STATE_COOKIE)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="Lax",
        secure=request.scheme == "https",
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    ui = request.app[_UI]
    ui.sessions.drop(request.cookies.get(SESSION_COOKIE))
    response = _redirect(f"{PREFIX}/", status=303)
    response.del_cookie(SESSION_COOKIE)
    return response


def _day(value: str | None, *, end: bool = False) -> float | None:
    if not value:
        return None
    try:
        t = calendar.timegm(time.strptime(value, "%Y-%m-%d"))
    except ValueError:
        raise web.HTTPBadRequest(text=f"bad date {value!r}: expected YYYY-MM-DD\n") from None
    return float(t + (86400 if end else 0))


@_signed_in
async def runs(request: web.Request, ui: Dashboard, session: Session) -> web.StreamResponse:
    q = request.query
    repos = sorted(session.repos)
    wanted = [q["repo"]] if q.get("repo") else repos
    rows = await ui.store.query_runs(
        [r for r in wanted if allowed(session, r)],
        loop=q.get("loop") or None,
        state=q.get("state") or None,
        exit_reason=q.get("exit") or None,
        since=_day(q.get("since")),
        until=_day(q.get("until"), end=True),
        limit=RUN_LIMIT,
    )
    return ui.render(
        "runs.html", request, session, runs=rows, repos=repos, filters=dict(q), limit=RUN_LIMIT
    )


def _attempts(steps: list[Any]) -> list[dict[str, str]]:
    """Each patch attempt and its verdict, with why (the attempt step's note)."""
    out = []
    for s in steps:
        name = str(s["name"])
        if name.startswith("attempt "):
            out.append({"name": name, "verdict": str(s["verdict"]), "why": str(s["input"] or "")})
    return out


def _diff_of(steps: list[Any]) -> str:
    for s in reversed(steps):
        if s["name"] == "diff" and s["output"]:
            return str(s["output"])
    return ""


@_signed_in
async def run_page(request: web.Request, ui: Dashboard, session: Session) -> web.StreamResponse:
    try:
        run_id = int(request.match_info["run_id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such run\n") from None
    run = await ui.store.get_run(run_id)
    if run is None or not allowed(session, str(run["repo"])):
        raise web.HTTPNotFound(text="no such run\n")  # the same answer: no hint it exists
    steps = await ui.store.steps_for(run_id)
    tables = [s for s in steps if s["name"] in ("retest", "baseline", "verification")]
    return ui.render(
        "run.html",
        request,
        session,
        run=run,
        steps=steps,
        attempts=_attempts(steps),
        diff=_diff_of(steps),
        tables=tables,
    )


@_signed_in
async def queue(request: web.Request, ui: Dashboard, session: Session) -> web.StreamResponse:
    jobs = await ui.store.jobs_of(sorted(session.repos))
    by_state: dict[str, list[Any]] = {"queued": [], "running": [], "dead": []}
    for job in jobs:
        by_state.setdefault(str(job["state"]), []).append(job)
    return ui.render("queue.html", request, session, jobs=by_state, now=time.time())


@_signed_in
async def retry(request: web.Request, ui: Dashboard, session: Session) -> web.StreamResponse:
    form = await request.post()
    if not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
        raise web.HTTPForbidden(text="the form expired: reload the page\n")
    try:
        job_id = int(request.match_info["job_id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such job\n") from None
    job = await ui.store.get_job(job_id)
    if job is None or not allowed(session, str(job["repo"])):
        raise web.HTTPNotFound(text="no such job\n")
    if await ui.store.retry_job(job_id):
        log.info("dashboard: %s queued dead job %d again", session.login, job_id)
    raise web.HTTPSeeOther(f"{PREFIX}/queue")


def _chart(rows: list[tuple[str, str, float, int]]) -> dict[str, Any]:
    """An SVG stacked bar chart's geometry: one bar per day, one colour per group."""
    days = sorted({d for d, _, _, _ in rows})
    groups = sorted({g for _, g, _, _ in rows})
    per_day: dict[str, float] = {d: 0.0 for d in days}
    for d, _, c, _ in rows:
        per_day[d] += c
    top = max(per_day.values(), default=0.0) or 1.0
    width, height, bar = 640, 200, max(4, min(40, 600 // max(len(days), 1) - 4))
    palette = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6"]
    colour = {g: palette[k % len(palette)] for k, g in enumerate(groups)}
    rects = []
    for k, d in enumerate(days):
        y = float(height)
        for day, g, c, _ in rows:
            if day != d or c <= 0:
                continue
            h = c / top * (height - 20)
            y -= h
            x = 10 + k * (bar + 4)
            rects.append({"x": x, "y": y, "w": bar, "h": h, "fill": colour[g], "title": f"{d} {g}"})
    return {"width": width, "height": height, "rects": rects, "legend": colour, "top": top}


@_signed_in
async def spend(request: web.Request, ui: Dashboard, session: Session) -> web.StreamResponse:
    by = request.query.get("by", "repo")
    if by not in ("repo", "loop", "model"):
        raise web.HTTPBadRequest(text="by: expected repo, loop or model\n")
    since = time.time() - SPEND_DAYS * 86400
    rows = await ui.store.spend_by_day(sorted(session.repos), by=by, since=since)
    return ui.render(
        "spend.html", request, session, rows=rows, by=by, chart=_chart(rows), days=SPEND_DAYS
    )


def setup_ui(app: web.Application, settings: Settings, store: StoreGetter) -> Dashboard:
    """Mount the dashboard on `app` under `/ui`."""
    ui = Dashboard(settings, store)
    app[_UI] = ui

    async def http_session(_app: web.Application) -> Any:
        async with aiohttp.ClientSession() as http:
            ui.http = http
            yield
            ui.http = None

    app.cleanup_ctx.append(http_session)
    app.router.add_get(f"{PREFIX}", _to_root)
    app.router.add_get(f"{PREFIX}/", runs)
    app.router.add_get(f"{PREFIX}/login", login)
    app.router.add_get(f"{PREFIX}/callback", callback)
    app.router.add_post(f"{PREFIX}/logout", logout)
    app.router.add_get(f"{PREFIX}/runs/{{run_id}}", run_page)
    app.router.add_get(f"{PREFIX}/queue", queue)
    app.router.add_post(f"{PREFIX}/jobs/{{job_id}}/retry", retry)
    app.router.add_get(f"{PREFIX}/spend", spend)
    return ui


async def _to_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{PREFIX}/")
