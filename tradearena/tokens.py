"""Asymmetric JWTs: the lobby signs, everyone else only verifies.

Ed25519 (JWS `EdDSA`) keys with a `kid` in every token header and a JWKS
document listing the public keys, so keys can rotate: a verifier accepts any
key it knows by `kid`. Two token kinds: short-lived access tokens for the
lobby API, per-match tokens valid for one match and one player only, and
spectator tokens (typ `spectate`) that let a user watch one match and never act.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

ISSUER = "tradearena-lobby"
ACCESS_AUDIENCE = "tradearena-api"
ALGORITHM = "EdDSA"
MATCH_TYP = "match"
SPECTATE_TYP = "spectate"
LEEWAY_S = 5


class TokenError(Exception):
    """A token was refused; `code` is stable, `message` explains."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def match_audience(match_id: str) -> str:
    return f"tradearena-match:{match_id}"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class Verifier:
    """Public keys by kid; verifies tokens, never signs."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any]) -> Verifier:
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                continue
            key = OKPAlgorithm.from_jwk(json.dumps(jwk))
            if isinstance(key, Ed25519PublicKey):
                keys[str(jwk.get("kid") or key_id(key))] = key
        if not keys:
            raise ValueError("the JWKS document holds no Ed25519 key")
        return cls(keys)

    @classmethod
    def from_public_pem(cls, pem: bytes) -> Verifier:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("expected an Ed25519 public key")
        return cls({key_id(key): key})

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            jwk = json.loads(OKPAlgorithm.to_jwk(key))
            out.append({**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": out}

    def _decode(self, token: str, audience: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenError("token_malformed", "the token is not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError("token_invalid", f"algorithm {header.get('alg')!r} is not accepted")
        key = self.keys.get(str(header.get("kid")))
        if key is None:
            raise TokenError("token_invalid", "the token was signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token_expired", "the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token_wrong_audience", "the token is not valid here") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError("token_invalid", f"the token is invalid: {exc}") from None
        return claims

    def verify_access(self, token: str) -> dict[str, Any]:
        claims = self._decode(token, ACCESS_AUDIENCE)
        if claims.get("typ") != "access":
            raise TokenError("token_invalid", "not an access token")
        return claims

    def verify_match(self, token: str, match_id: str, player: str | None = None) -> dict[str, Any]:
        """A match token is valid only for its match and, when given, its player."""
        claims = self._decode(token, match_audience(match_id))
        if claims.get("typ") != MATCH_TYP or claims.get("mid") != match_id:
            raise TokenError("token_wrong_match", "the token is for another match")
        if player is not None and claims.get("sub") != player:
            raise TokenError("token_wrong_player", "the token is for another player")
        return claims

    def verify_spectator(self, token: str, match_id: str) -> dict[str, Any]:
        """A spectator token: watching `match_id` only (its `sub` is the watching user)."""
        claims = self._decode(token, match_audience(match_id))
        if claims.get("typ") != SPECTATE_TYP or claims.get("mid") != match_id:
            raise TokenError("token_wrong_match", "not a spectator token for this match")
        return claims


def claimed_typ(token: str) -> str | None:
    """The `typ` claim read WITHOUT verification: only to pick which verification the
    token goes through (a player's or a spectator's); never trust anything else from it."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    typ = claims.get("typ") if isinstance(claims, dict) else None
    return typ if isinstance(typ, str) else None


def claimed_match(token: str) -> str | None:
    """The `mid` claim read WITHOUT verification: only to pick which match verifies the
    token (a server hosting many matches); never trust anything else from it."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    mid = claims.get("mid") if isinstance(claims, dict) else None
    return mid if isinstance(mid, str) and mid else None


@dataclass
class Signer:
    """The lobby's signing key (plus older public keys still accepted by verifiers)."""

    private_key: Ed25519PrivateKey
    extra_public: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("expected an Ed25519 private key (PKCS#8 PEM)")
        return cls(key)

    @classmethod
    def from_file(cls, path: Path) -> Signer:
        return cls.from_pem(path.read_bytes())

    @property
    def kid(self) -> str:
        return key_id(self.private_key.public_key())

    def verifier(self) -> Verifier:
        return Verifier({self.kid: self.private_key.public_key(), **self.extra_public})

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def _sign(self, claims: dict[str, Any], ttl_s: int, now: float | None) -> str:
        issued = int(now if now is not None else time.time())
        payload = {
            **claims,
            "iss": ISSUER,
            "iat": issued,
            "nbf": issued - 1,
            "exp": issued + ttl_s,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(payload, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def access_token(
        self, user_id: str, role: str, ttl_s: int = 900, now: float | None = None, **extra: Any
    ) -> str:
        claims = {"sub": user_id, "aud": ACCESS_AUDIENCE, "typ": "access", "role": role, **extra}
        return self._sign(claims, ttl_s, now)

    def match_token(
        self, match_id: str, player: str, ttl_s: int, now: float | None = None, **extra: Any
    ) -> str:
        claims = {"sub": player, "aud": match_audience(match_id), "typ": MATCH_TYP, "mid": match_id}
        return self._sign({**claims, **extra}, ttl_s, now)

    def spectator_token(
        self, match_id: str, user_id: str, ttl_s: int, now: float | None = None, **extra: Any
    ) -> str:
        """Lets `user_id` watch `match_id` (delayed, read-only); never a player's token."""
        claims = {
            "sub": user_id,
            "aud": match_audience(match_id),
            "typ": SPECTATE_TYP,
            "mid": match_id,
        }
        return self._sign({**claims, **extra}, ttl_s, now)
