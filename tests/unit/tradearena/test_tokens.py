"""Tokens: signed by the lobby's Ed25519 key, verified by key id; a match token is
valid for one match and one player only."""

from __future__ import annotations

import time

import jwt
import pytest

from tradearena.tokens import (
    Signer,
    TokenError,
    Verifier,
    claimed_typ,
    generate_private_key_pem,
)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.from_pem(generate_private_key_pem())


def test_match_token_round_trip_through_jwks(signer: Signer) -> None:
    verifier = Verifier.from_jwks(signer.verifier().jwks())
    token = signer.match_token("m-1", "alice", ttl_s=60)
    claims = verifier.verify_match(token, "m-1", "alice")
    assert (claims["sub"], claims["mid"], claims["typ"]) == ("alice", "m-1", "match")
    assert jwt.get_unverified_header(token)["kid"] == signer.kid


@pytest.mark.parametrize(
    ("match_id", "player", "code"),
    [("m-2", "alice", "token_wrong_audience"), ("m-1", "bob", "token_wrong_player")],
)
def test_match_token_is_refused_elsewhere(
    signer: Signer, match_id: str, player: str, code: str
) -> None:
    token = signer.match_token("m-1", "alice", ttl_s=60)
    with pytest.raises(TokenError) as err:
        signer.verifier().verify_match(token, match_id, player)
    assert err.value.code == code


def test_expired_forged_and_garbage_tokens_are_refused(signer: Signer) -> None:
    verifier = signer.verifier()
    old = signer.match_token("m-1", "alice", ttl_s=10, now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired") as err:
        verifier.verify_match(old, "m-1")
    assert err.value.code == "token_expired"
    other = Signer.from_pem(generate_private_key_pem())
    forged = other.match_token("m-1", "alice", ttl_s=60)
    with pytest.raises(TokenError, match="unknown key"):
        verifier.verify_match(forged, "m-1")
    # same kid, other key: the signature check catches it
    header_kid_forgery = jwt.encode(
        jwt.decode(forged, options={"verify_signature": False}),
        other.private_key,
        algorithm="EdDSA",
        headers={"kid": signer.kid},
    )
    with pytest.raises(TokenError) as err:
        verifier.verify_match(header_kid_forgery, "m-1")
    assert err.value.code == "token_invalid"
    none_alg = jwt.encode({"sub": "alice"}, None, algorithm="none")
    with pytest.raises(TokenError, match="not accepted"):
        verifier.verify_match(none_alg, "m-1")
    with pytest.raises(TokenError) as err:
        verifier.verify_match("not-a-token", "m-1")
    assert err.value.code == "token_malformed"


def test_access_and_match_tokens_are_not_interchangeable(signer: Signer) -> None:
    verifier = signer.verifier()
    access = signer.access_token("user-1", "player")
    assert verifier.verify_access(access)["role"] == "player"
    with pytest.raises(TokenError):
        verifier.verify_match(access, "m-1")
    with pytest.raises(TokenError):
        verifier.verify_access(signer.match_token("m-1", "user-1", ttl_s=60))


def test_public_pem_verifier_matches_the_signer(signer: Signer) -> None:
    verifier = Verifier.from_public_pem(signer.public_pem())
    assert verifier.verify_access(signer.access_token("u", "admin"))["sub"] == "u"


def test_spectator_token_round_trip(signer: Signer) -> None:
    token = signer.spectator_token("m-1", "user-9", ttl_s=60)
    claims = signer.verifier().verify_spectator(token, "m-1")
    assert (claims["sub"], claims["mid"], claims["typ"]) == ("user-9", "m-1", "spectate")
    assert claimed_typ(token) == "spectate"
    with pytest.raises(TokenError) as err:
        signer.verifier().verify_spectator(token, "m-2")
    assert err.value.code == "token_wrong_audience"


def test_spectator_and_player_tokens_are_not_interchangeable(signer: Signer) -> None:
    verifier = signer.verifier()
    spectator = signer.spectator_token("m-1", "alice", ttl_s=60)
    player = signer.match_token("m-1", "alice", ttl_s=60)
    with pytest.raises(TokenError) as err:
        verifier.verify_match(spectator, "m-1")  # a spectator can never act
    assert err.value.code == "token_wrong_match"
    with pytest.raises(TokenError):
        verifier.verify_match(spectator, "m-1", "alice")
    with pytest.raises(TokenError) as err:
        verifier.verify_spectator(player, "m-1")
    assert err.value.code == "token_wrong_match"
    with pytest.raises(TokenError):
        verifier.verify_spectator(signer.access_token("alice", "player"), "m-1")
    # A forged typ needs the signature: one from another key is refused as before.
    other = Signer.from_pem(generate_private_key_pem())
    with pytest.raises(TokenError):
        verifier.verify_spectator(other.spectator_token("m-1", "alice", ttl_s=60), "m-1")
