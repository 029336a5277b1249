"""Credentials: the App's JWT, installation tokens (minted, scoped, expiring) and which
operations need which; `token_allows` is what the git smart-HTTP routes ask too."""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import jwt

from tests.support.fakegithub.operations import Operation
from tests.support.fakegithub.registry import HandlerSpec
from tests.support.fakegithub.state import (
    PERMISSION_LEVELS,
    AuthKind,
    FakeRepo,
    GitHubError,
    InstallationToken,
)

# Operations GitHub only accepts with the App's JWT, not an installation token.
_JWT_OPERATIONS = frozenset(
    {"apps/get-repo-installation", "apps/get-org-installation", "apps/get-user-installation"}
)

# Operations for a user's own (OAuth user-to-server) token, not the App's.
_USER_OPERATIONS = frozenset(
    {
        "users/get-authenticated",
        "apps/list-installations-for-authenticated-user",
        "apps/list-installation-repos-for-authenticated-user",
    }
)

# Operations GitHub accepts with no credentials at all (the manifest code is the credential).
_UNAUTHENTICATED_OPERATIONS = frozenset({"apps/create-from-manifest"})


def _parse_auth(header: str | None) -> tuple[AuthKind | None, str | None]:
    if not header:
        return None, None
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() not in ("token", "bearer") or not credential:
        return None, None
    # GitHub accepts installation tokens under both schemes; only a JWT has three dot parts.
    if scheme.lower() == "bearer" and credential.count(".") == 2:
        return "jwt", credential
    return "token", credential


class Auth:
    """FakeGitHub's authentication and authorisation (a mixin of FakeGitHub)."""

    user_tokens: dict[str, str]  # OAuth user-to-server tokens → login (oauth.py)

    # ----------------------------------------------------------------------------- auth

    def _authorize(
        self,
        op: Operation,
        params: dict[str, str],
        auth_kind: AuthKind | None,
        credential: str | None,
        spec: HandlerSpec | None,
    ) -> tuple[InstallationToken | None, FakeRepo | None]:
        repo: FakeRepo | None = None
        if op.operation_id in _UNAUTHENTICATED_OPERATIONS:
            return None, None
        if op.operation_id in _USER_OPERATIONS:
            # Only a user's token says who "the authenticated user" is (an installation token
            # or the JWT is not one); the handler looks the user up (`user_of`).
            if credential is None:
                raise GitHubError(401, "Requires authentication")
            if auth_kind != "token" or credential not in self.user_tokens:
                raise GitHubError(401, "Bad credentials")
            return None, None
        is_jwt_op = (
            op.path == "/app" or op.path.startswith("/app/") or op.operation_id in _JWT_OPERATIONS
        )
        if is_jwt_op:
            # GitHub answers a token on an App endpoint with the same "could not be decoded".
            if auth_kind != "jwt" or credential is None:
                raise GitHubError(401, "A JSON web token could not be decoded")
            self._check_jwt(credential)
            if "owner" in params and "repo" in params:
                repo = self.repos.get(f"{params['owner']}/{params['repo']}".lower())
                if repo is None or repo.installation_id is None:
                    raise GitHubError(404, "Not Found")
            return None, repo

        if credential is None:
            raise GitHubError(401, "Requires authentication")
        if auth_kind == "jwt":
            raise GitHubError(401, "Bad credentials")
        token = self.tokens.get(credential)
        if token is None or token.expires_at <= datetime.now(UTC):
            raise GitHubError(401, "Bad credentials")

        if "owner" in params and "repo" in params:
            full = f"{params['owner']}/{params['repo']}".lower()
            repo = self.repos.get(full)
            if repo is None:
                raise GitHubError(404, "Not Found")
            in_installation = repo.installation_id == token.installation_id
            in_scope = token.repositories is None or full in token.repositories
            if not (in_installation and in_scope):
                raise GitHubError(403, "Resource not accessible by integration")

        if spec is not None and spec.permission is not None:
            needed = "read" if op.method in ("GET", "HEAD") else "write"
            # Every installation can read metadata, whatever else it was granted.
            floor = "read" if spec.permission == "metadata" else "none"
            have = token.permissions.get(spec.permission, floor)
            if PERMISSION_LEVELS.get(have, 0) < PERMISSION_LEVELS[needed]:
                raise GitHubError(403, "Resource not accessible by integration")
        return token, repo

    def _check_jwt(self, credential: str) -> None:
        try:
            claims = jwt.decode(
                credential,
                self._public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_iss": False,
                    "verify_aud": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise GitHubError(401, "A JSON web token could not be decoded") from exc
        now = time.time()
        iat, exp, iss = claims.get("iat"), claims.get("exp"), claims.get("iss")
        if not isinstance(iat, int | float) or iat > now:
            raise GitHubError(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued",
            )
        if not isinstance(exp, int | float) or exp <= now:
            raise GitHubError(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future "
                "time at which the assertion expires",
            )
        if exp - iat > 600:
            raise GitHubError(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(iss) != str(self.app_id):
            raise GitHubError(401, "'Issuer' claim ('iss') must be an Integer")

    def token_allows(self, token: str, full_name: str, write: bool) -> bool:
        """Whether `token` may read (or push to) the repo's contents; the shape of
        `githttp.CheckToken`, so git smart HTTP shares the REST auth rules."""
        tok = self.tokens.get(token)
        repo = self.repos.get(full_name.lower())
        if tok is None or repo is None or tok.expires_at <= datetime.now(UTC):
            return False
        if repo.installation_id != tok.installation_id:
            return False
        if tok.repositories is not None and full_name.lower() not in tok.repositories:
            return False
        have = PERMISSION_LEVELS.get(tok.permissions.get("contents", "none"), 0)
        return have >= PERMISSION_LEVELS["write" if write else "read"]

    def mint_token(
        self,
        installation_id: int,
        *,
        repositories: Iterable[str] | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> InstallationToken:
        """Mint a token directly (what the access_tokens endpoint does), for test setup."""
        inst = self.installations.get(installation_id)
        if inst is None:
            raise GitHubError(404, "Not Found")
        scope: frozenset[str] | None = None
        if repositories is not None:
            owned = {
                r.name.lower(): r.full_name.lower()
                for r in self.repos.values()
                if r.installation_id == installation_id
            }
            wanted = [n.lower() for n in repositories]
            if any(n not in owned for n in wanted):
                raise GitHubError(
                    422,
                    "There is at least one repository that does not exist or is not accessible "
                    "to the parent installation.",
                )
            scope = frozenset(owned[n] for n in wanted)
        granted = dict(inst.permissions)
        if permissions is not None:
            for name, level in permissions.items():
                have = PERMISSION_LEVELS.get(inst.permissions.get(name, "none"), 0)
                if PERMISSION_LEVELS.get(level, 99) > have:
                    raise GitHubError(
                        422, "The permissions requested are not granted to this installation."
                    )
            granted = dict(permissions)
        alphabet = string.ascii_letters + string.digits
        value = "ghs_" + "".join(secrets.choice(alphabet) for _ in range(36))
        token = InstallationToken(
            token=value,
            installation_id=installation_id,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
            permissions=granted,
            repositories=scope,
        )
        self.tokens[value] = token
        return token
