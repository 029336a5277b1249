"""Real git over smart HTTP for tests: `git http-backend` run as CGI behind aiohttp.

Clone, fetch and push in tests go through the same wire protocol, HTTP status codes and Basic
auth challenge as github.com, so pygit2's credential callback and error paths really run.

Auth mimics GitHub for an App installation token: HTTP Basic with the username
`x-access-token` and the token as password. A missing or rejected credential gets a 401 with a
`WWW-Authenticate: Basic` challenge (libgit2 only asks its credential callback after such a
challenge); a valid token without write access gets a 403 on push.

`add_git_routes` mounts the handler on any aiohttp app (the FakeGitHub does); `git_server` is a
standalone loopback server for tests that need nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import re
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pygit2
from aiohttp import web

#: check_token(token, "owner/repo", write) -> allowed
CheckToken = Callable[[str, str, bool], bool]

_GIT_EXEC_PATH = subprocess.run(
    ["git", "--exec-path"], check=True, capture_output=True, text=True
).stdout.strip()
HTTP_BACKEND = str(Path(_GIT_EXEC_PATH) / "git-http-backend")

_NAME = r"[A-Za-z0-9_.-]+"
_NAME_RE = re.compile(rf"^{_NAME}$")
_REPOS_ROOT_KEY = web.AppKey("loopwright_git_repos_root", Path)
_CHECK_TOKEN_KEY = web.AppKey("loopwright_git_check_token", object)

# The four smart-HTTP endpoints; anything else (dumb HTTP) is refused, as on GitHub.
_SMART_TAILS = ("info/refs", "git-upload-pack", "git-receive-pack")


def create_bare_repo(repos_root: Path, full_name: str, default_branch: str = "main") -> Path:
    """Create an empty bare repository served at `/{owner}/{repo}.git` with push enabled."""
    owner, repo = full_name.split("/")
    path = repos_root / owner / f"{repo}.git"
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)],
        check=True,
    )
    # http-backend only enables receive-pack for an authenticated REMOTE_USER by default; be
    # explicit so pushes do not depend on that detail.
    subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"], check=True)
    return path


def _challenge(message: str) -> web.Response:
    return web.Response(
        status=401,
        text=message + "\n",
        headers={"WWW-Authenticate": 'Basic realm="GitHub"'},
    )


def _token_from(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or user != "x-access-token" or not password:
        return None
    return password


async def _feed_stdin(request: web.Request, stdin: asyncio.StreamWriter, first: bytes) -> None:
    try:
        if first:
            stdin.write(first)
            await stdin.drain()
        async for chunk in request.content.iter_chunked(64 * 1024):
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        # The backend stopped reading (it failed early); its own response says why.
        pass
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
            await stdin.wait_closed()


async def _handle(request: web.Request) -> web.StreamResponse:
    owner = request.match_info["owner"]
    repo = request.match_info["repo"]
    tail = request.match_info["tail"]
    if not (_NAME_RE.match(owner) and _NAME_RE.match(repo)) or ".." in (owner, repo):
        raise web.HTTPNotFound()
    if tail not in _SMART_TAILS:
        raise web.HTTPNotFound(text="only the smart HTTP protocol is served\n")
    service = request.query.get("service", "") if tail == "info/refs" else tail
    if service not in ("git-upload-pack", "git-receive-pack"):
        raise web.HTTPForbidden(text="smart HTTP clients only\n")
    write = service == "git-receive-pack"
    full_name = f"{owner}/{repo}"

    check_token: CheckToken = request.app[_CHECK_TOKEN_KEY]  # type: ignore[assignment]
    token = _token_from(request)
    if token is None:
        return _challenge("Authentication required")
    if not check_token(token, full_name, False):
        # GitHub answers a bad token with a fresh challenge, not 403.
        return _challenge("Invalid username or token")
    if write and not check_token(token, full_name, True):
        raise web.HTTPForbidden(text=f"Permission to {full_name}.git denied\n")

    repos_root: Path = request.app[_REPOS_ROOT_KEY]
    if not (repos_root / owner / f"{repo}.git").is_dir():
        raise web.HTTPNotFound(text="Repository not found.\n")

    # aiohttp's server inflates `Content-Encoding: gzip` request bodies itself (its default);
    # git's client gzips upload-pack requests. Tell the backend about gzip only if the bytes we
    # hand it are still compressed: pkt-lines start with ASCII hex, gzip with 1f 8b.
    first = b""
    if request.method == "POST":
        first = await request.content.read(2)
    still_gzipped = (
        request.headers.get("Content-Encoding", "").lower() == "gzip" and first == b"\x1f\x8b"
    )

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repos_root),
        # Keep the operator's own git config out of the server.
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_PROJECT_ROOT": str(repos_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": request.method,
        "PATH_INFO": f"/{owner}/{repo}.git/{tail}",
        "QUERY_STRING": request.query_string,
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "REMOTE_USER": "x-access-token",
        "REMOTE_ADDR": request.remote or "127.0.0.1",
    }
    if still_gzipped:
        env["HTTP_CONTENT_ENCODING"] = "gzip"
    if "Git-Protocol" in request.headers:
        env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
    # CONTENT_LENGTH is left out on purpose: the body may have been inflated by aiohttp, and
    # without it the backend reads its input until EOF.

    proc = await asyncio.create_subprocess_exec(
        HTTP_BACKEND,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    feeder = asyncio.create_task(_feed_stdin(request, proc.stdin, first))
    stderr_task = asyncio.create_task(proc.stderr.read())
    finished = False
    try:
        status = 200
        reason = "OK"
        headers: list[tuple[str, str]] = []
        while True:
            line = await proc.stdout.readline()
            if not line or line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            value = value.strip()
            if name.lower() == "status":
                code, _, reason = value.partition(" ")
                status = int(code)
            else:
                headers.append((name, value))
        response = web.StreamResponse(status=status, reason=reason or None)
        for name, value in headers:
            if name.lower() == "content-length":
                response.content_length = int(value)
            else:
                response.headers.add(name, value)
        await response.prepare(request)
        try:
            while chunk := await proc.stdout.read(64 * 1024):
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            # libgit2 hangs up as soon as it has read what it needs; nothing to report.
            pass
        finished = True
        return response
    finally:
        # Kill only when we gave up early: Popen.send_signal() polls first and may reap the
        # child behind asyncio's child watcher ("Unknown child process" warnings).
        if not finished and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await feeder
        await proc.wait()
        await stderr_task


def add_git_routes(app: web.Application, repos_root: Path, check_token: CheckToken) -> None:
    """Serve the bare repositories `repos_root/{owner}/{repo}.git` over smart HTTP."""
    app[_REPOS_ROOT_KEY] = repos_root
    app[_CHECK_TOKEN_KEY] = check_token
    app.router.add_route("*", rf"/{{owner:{_NAME}}}/{{repo:{_NAME}}}.git/{{tail:.*}}", _handle)


@contextlib.asynccontextmanager
async def git_server(
    repos_root: Path, tokens: Mapping[str, bool] | None = None
) -> AsyncIterator[str]:
    """A loopback git server; yields its base URL (`http://127.0.0.1:PORT`).

    `tokens` maps each accepted token to whether it may push; it is read on every request, so a
    test may change it while the server runs. Every repository accepts every listed token.
    """
    grants = tokens if tokens is not None else {}

    def check(token: str, _full_name: str, write: bool) -> bool:
        return token in grants and (grants[token] or not write)

    app = web.Application()
    add_git_routes(app, repos_root, check)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def commit_files(bare: Path, files: dict[str, str | None], message: str) -> str:
    """Commit straight into a bare repo's main (None deletes a file)."""
    repo = pygit2.Repository(str(bare))
    index = pygit2.Index()
    parents = []
    if not repo.head_is_unborn:
        head = repo.head.peel(pygit2.Commit)
        index.read_tree(head.tree)
        parents = [head.id]
    for path, text in files.items():
        if text is None:
            index.remove(path)
        else:
            blob = repo.create_blob(text.encode())
            index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
    sig = pygit2.Signature("Alice", "alice@example.com")
    tree = index.write_tree(repo)
    return str(repo.create_commit("refs/heads/main", sig, sig, message, tree, parents))
