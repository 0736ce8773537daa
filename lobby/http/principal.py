"""Who is calling: access-token authentication and the admin check.

`authenticate(request, admin=...)` is what `Operation(auth="user"|"admin")` runs;
feature modules with plain aiohttp handlers call `require_user(request)` or
`require_admin(request)` themselves. A banned user's access tokens stop
working at once (a Redis flag set by the ban, living as long as a token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from lobby import keys as redis_keys
from lobby.http.problems import problem
from lobby.state import REDIS, VERIFIER
from tradearena.tokens import TokenError

CLAIMS = web.RequestKey("claims", dict)


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: str
    claims: dict[str, Any]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def verified_claims(request: web.Request) -> dict[str, Any]:
    """The verified access-token claims (cached on the request); raises a 401 problem."""
    cached: dict[str, Any] | None = request.get(CLAIMS)
    if cached is not None:
        return cached
    token = bearer_token(request)
    challenge = {"WWW-Authenticate": 'Bearer realm="tradearena"'}
    if token is None:
        raise problem(
            401, "auth_required", "an access token is required (Authorization: Bearer)", challenge
        )
    try:
        claims = request.app[VERIFIER].verify_access(token)
    except TokenError as exc:
        raise problem(401, exc.code, exc.message, challenge) from None
    request[CLAIMS] = claims
    return claims


async def authenticate(request: web.Request, admin: bool = False) -> Principal:
    claims = verified_claims(request)
    user_id = str(claims["sub"])
    if await request.app[REDIS].exists(redis_keys.lobby_banned(user_id)):
        raise problem(403, "account_banned", "this account is banned")
    who = Principal(user_id, str(claims.get("role", "player")), claims)
    if admin and not who.is_admin:
        raise problem(403, "admin_required", "this needs the admin role")
    return who


async def require_user(request: web.Request) -> Principal:
    return await authenticate(request)


async def require_admin(request: web.Request) -> Principal:
    return await authenticate(request, admin=True)
