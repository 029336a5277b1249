"""`loopwright setup`: register the GitHub App from `app.yml` with GitHub's manifest flow.

Typing an App's permissions and events into GitHub's form by hand is where installs go wrong,
so this serves a one-button local page whose form posts the manifest to GitHub
(`{github}/settings/apps/new`, or an organisation's). After the user confirms, GitHub redirects
back here with a one-use code, which we exchange (`POST /app-manifests/{code}/conversions`,
unauthenticated: the code is the credential) for the App's id, private key, webhook secret and
OAuth client id/secret. Those are written to a key file and a `.env` file, both owner-only
(0600), and the install URL is printed. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from bot.settings import ENV_PREFIX, Settings, SettingsError, load_settings

DEFAULT_GITHUB_URL = "https://github.com"
DEFAULT_API_URL = "https://api.github.com"
#: The manifest shipped at the repository root (used when `./app.yml` does not exist).
BUNDLED_MANIFEST = Path(__file__).resolve().parent.parent / "app.yml"


class SetupError(Exception):
    """Setup cannot go on; the message is one line for the operator."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--github-url",
        default=DEFAULT_GITHUB_URL,
        help="GitHub's web address (an Enterprise host's, e.g. https://ghe.example.com)",
    )
    parser.add_argument("--org", help="register the App under this organisation, not your user")
    parser.add_argument("--manifest", type=Path, help="the App manifest (default: app.yml)")
    parser.add_argument(
        "--webhook-url", help="where GitHub delivers webhooks (default: app.yml's hook URL)"
    )
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    parser.add_argument(
        "--key-file", type=Path, help="where the private key goes (default: next to --env-file)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="the local page's address")
    parser.add_argument("--port", type=int, default=0, help="the local page's port (0: any)")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="give up after this many seconds"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing .env/key")


def load_manifest(path: Path | None, webhook_url: str | None) -> dict[str, Any]:
    """The manifest GitHub receives: app.yml, with the webhook URL overridden if given."""
    if path is None:
        path = Path("app.yml") if Path("app.yml").is_file() else BUNDLED_MANIFEST
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SetupError(f"cannot read the App manifest {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SetupError(f"the App manifest {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not data.get("name"):
        raise SetupError(f"the App manifest {path} has no `name`")
    if webhook_url:
        hook = dict(data.get("hook_attributes") or {})
        hook["url"] = webhook_url
        hook.setdefault("active", True)
        data["hook_attributes"] = hook
    return data


def form_action(github_url: str, org: str | None) -> str:
    base = github_url.rstrip("/")
    if org:
        return f"{base}/organizations/{org}/settings/apps/new"
    return f"{base}/settings/apps/new"


def _page(action: str, manifest: dict[str, Any], state: str) -> str:
    hook = (manifest.get("hook_attributes") or {}).get("url", "")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Register loopwright</title></head>
<body>
<h1>Register the {html.escape(str(manifest["name"]))} GitHub App</h1>
<p>Webhooks will go to <code>{html.escape(str(hook))}</code>.
The button sends this manifest to GitHub, where you confirm; GitHub then sends you back here.</p>
<form id="manifest-form" method="post" action="{html.escape(action + "?state=" + state)}">
<input type="hidden" name="manifest" value="{html.escape(json.dumps(manifest))}">
<input type="hidden" name="state" value="{html.escape(state)}">
<button type="submit">Create the GitHub App</button>
</form>
</body></html>
"""


def _check_writable(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise SetupError(f"{path} already exists: pass --force to overwrite it")


def _write_private(path: Path, text: str, force: bool) -> None:
    """Write `text` readable by the owner only; the file never exists with wider permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)  # umask cannot widen it, but an odd filesystem might
        if not force and path.exists():
            raise SetupError(f"{path} already exists: pass --force to overwrite it")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _env_value(value: str) -> str:
    """A value for both `set -a; . .env` and systemd's EnvironmentFile."""
    if value and all(c.isalnum() or c in "-_./:@+=," for c in value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


def write_credentials(
    app: dict[str, Any], env_file: Path, key_file: Path, api_url: str, force: bool
) -> None:
    for field in ("id", "pem", "webhook_secret", "client_id", "client_secret"):
        if not app.get(field):
            raise SetupError(f"GitHub's conversion answer has no `{field}`: nothing was written")
    lines = [
        f"{ENV_PREFIX}APP_ID={int(app['id'])}",
        f"{ENV_PREFIX}PRIVATE_KEY_FILE={_env_value(str(key_file.resolve()))}",
        f"{ENV_PREFIX}WEBHOOK_SECRET={_env_value(str(app['webhook_secret']))}",
        f"{ENV_PREFIX}GITHUB_CLIENT_ID={_env_value(str(app['client_id']))}",
        f"{ENV_PREFIX}GITHUB_CLIENT_SECRET={_env_value(str(app['client_secret']))}",
    ]
    if api_url.rstrip("/") != DEFAULT_API_URL:
        lines.append(f"{ENV_PREFIX}GITHUB_API_URL={_env_value(api_url)}")
    _write_private(key_file, str(app["pem"]), force)
    _write_private(env_file, "\n".join(lines) + "\n", force)


async def convert(session: aiohttp.ClientSession, api_url: str, code: str) -> dict[str, Any]:
    """Exchange the manifest code (one use, one hour) for the new App's credentials."""
    if not code or not all(c.isalnum() or c in "-_." for c in code):
        raise SetupError("GitHub's redirect carried no usable ?code=: start setup again")
    url = f"{api_url.rstrip('/')}/app-manifests/{code}/conversions"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    try:
        async with session.post(url, headers=headers) as resp:
            if resp.status == 404:
                raise SetupError(
                    "GitHub does not know this manifest code (codes are single-use and expire "
                    "after an hour): run `loopwright setup` again"
                )
            if resp.status != 201:
                raise SetupError(f"GitHub refused the manifest conversion: HTTP {resp.status}")
            data = await resp.json()
    except aiohttp.ClientError as exc:
        raise SetupError(f"cannot reach GitHub's API at {api_url}: {exc}") from None
    if not isinstance(data, dict):
        raise SetupError("GitHub's conversion answer is not a JSON object")
    return data


async def serve_setup(settings: Settings, args: argparse.Namespace) -> str:
    """Serve the page until GitHub redirects back; returns the install URL."""
    env_file: Path = args.env_file
    key_file: Path = args.key_file
    _check_writable(env_file, args.force)
    _check_writable(key_file, args.force)
    manifest = load_manifest(args.manifest, args.webhook_url)
    state = secrets.token_urlsafe(16)
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    api_url = settings.github_api_url
    action = form_action(args.github_url, args.org)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_page(action, manifest, state), content_type="text/html")

    async def callback(request: web.Request) -> web.Response:
        if done.done():
            return web.Response(status=410, text="setup has already finished")
        if request.query.get("state") != state:
            return web.Response(status=400, text="state mismatch: this redirect is not ours")
        try:
            async with aiohttp.ClientSession() as session:
                app = await convert(session, api_url, request.query.get("code", ""))
            write_credentials(app, env_file, key_file, api_url, args.force)
        except SetupError as exc:
            done.set_exception(exc)
            return web.Response(status=400, text=f"setup failed: {exc}")
        install = f"{str(app.get('html_url', '')).rstrip('/')}/installations/new"
        done.set_result(install)
        return web.Response(
            text=f'<p>Registered. Now <a href="{html.escape(install)}">install the App</a>.</p>',
            content_type="text/html",
        )

    webapp = web.Application()
    webapp.router.add_get("/", page)
    webapp.router.add_get("/callback", callback)
    runner = web.AppRunner(webapp, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else args.port
        local = f"http://{args.host}:{port}"
        manifest["redirect_url"] = f"{local}/callback"
        print(f"open {local}/ in a browser and press the button", flush=True)
        try:
            return await asyncio.wait_for(done, args.timeout)
        except TimeoutError:
            raise SetupError(
                f"no redirect from GitHub within {args.timeout:.0f} s: nothing was written"
            ) from None
    finally:
        await asyncio.sleep(0.05)  # let the callback's answer reach the browser
        await runner.cleanup()


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.key_file is None:
        args.key_file = args.env_file.absolute().parent / "loopwright-private-key.pem"
    try:
        install = asyncio.run(serve_setup(settings, args))
    except SetupError as exc:
        print(f"loopwright setup: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"loopwright setup: cannot serve the local page: {exc.strerror}", file=sys.stderr)
        return 1
    env_file: Path = args.env_file
    print(f"wrote {env_file} (mode 0600): load it with `set -a; . {env_file}; set +a`")
    print(f"install the App: {install}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loopwright setup", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"loopwright setup: {exc}", file=sys.stderr)
        return 2
    return run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
