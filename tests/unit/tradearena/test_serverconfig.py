"""The match server's configuration: one builder, names the server actually reads."""

from __future__ import annotations

import pytest

from matchserver.settings import MatchServerSettings
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.serverconfig import (
    FilePath,
    Secret,
    SecretRef,
    ServerDeployment,
    TlsFiles,
    Value,
    env_name,
    pool_server_config,
    server_config,
)

SPEC = MatchSpec("m-1", "duel", "blitz", 90_000, ("alice", "bob"), "ETHUSDT")
DEPLOYMENTS = [
    ServerDeployment(host="127.0.0.1", redis="redis://r:6379/0", verify_key="/k/public.pem"),
    ServerDeployment(
        host="0.0.0.0",
        redis=Secret("tradearena-redis", "url"),
        verify_key="/etc/keys/jwks.json",
        verify_key_kind="jwks_file",
        feed_source="synthetic",
        log_format="json",
        cors_origins=("https://play.example.com", "http://127.0.0.1:8080"),
        tls=TlsFiles("/etc/tradearena/tls/tls.crt", "/etc/tradearena/tls/tls.key"),
    ),
]


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_every_entry_is_a_match_server_setting(deployment: ServerDeployment) -> None:
    entries = server_config(SPEC, 7123, deployment)
    fields = [e.field for e in entries]
    assert len(set(fields)) == len(fields)
    assert set(fields) <= set(MatchServerSettings.model_fields)


def test_the_server_reads_back_what_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for entry in server_config(SPEC, 7123, DEPLOYMENTS[0]):
        assert not isinstance(entry, SecretRef)
        value = entry.path if isinstance(entry, FilePath) else entry.value
        monkeypatch.setenv(env_name(entry.field), value)
    settings = MatchServerSettings()
    assert settings.match_id == "m-1"
    assert settings.players == ("alice", "bob")
    assert settings.duration_ms == 90_000
    assert settings.port == 7123
    assert str(settings.public_key_file) == "/k/public.pem"
    assert settings.cors_origins == ()  # no browser page may connect


def test_the_lobbys_origins_reach_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    for entry in server_config(SPEC, 7123, DEPLOYMENTS[1]):
        if isinstance(entry, Value):
            monkeypatch.setenv(env_name(entry.field), entry.value)
    monkeypatch.setenv(env_name("public_key_file"), "/k/public.pem")
    settings = MatchServerSettings()
    assert settings.cors_origins == ("https://play.example.com", "http://127.0.0.1:8080")


@pytest.mark.parametrize(
    "origin", ["https://play.example.com/", "play.example.com", "ftp://x", "https://a b", "null"]
)
def test_an_origin_that_is_not_scheme_host_port_is_a_bad_setting(
    origin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_name("cors_origins"), f'["{origin}"]')
    with pytest.raises(ValueError, match="cors_origins"):
        MatchServerSettings(match_id="m-1", players=("alice",))


def test_secrets_and_files_are_references() -> None:
    entries = {e.field: e for e in server_config(SPEC, 7000, DEPLOYMENTS[1])}
    assert entries["redis_url"] == SecretRef("redis_url", "tradearena-redis", "url")
    assert entries["jwks_file"] == FilePath("jwks_file", "/etc/keys/jwks.json")
    assert entries["log_format"] == Value("log_format", "json")


def test_no_duration_means_the_formats_own_length() -> None:
    spec = MatchSpec("m-1", "duel", "blitz", 0, ("alice",))
    assert "duration_ms" not in {e.field for e in server_config(spec, 7000, DEPLOYMENTS[0])}


def test_tls_files_reach_the_server_and_make_the_scheme_https(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert DEPLOYMENTS[0].scheme == "http"
    assert DEPLOYMENTS[1].scheme == "https"
    for entry in server_config(SPEC, 7123, DEPLOYMENTS[1]):
        if isinstance(entry, FilePath):
            monkeypatch.setenv(env_name(entry.field), entry.path)
    settings = MatchServerSettings(match_id="m-1", players=("alice",))
    assert settings.tls
    assert str(settings.tls_cert_file) == "/etc/tradearena/tls/tls.crt"
    assert str(settings.tls_key_file) == "/etc/tradearena/tls/tls.key"


@pytest.mark.parametrize("only", ["tls_cert_file", "tls_key_file"])
def test_a_certificate_without_its_key_is_a_bad_setting(
    only: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env_name(only), "/etc/tradearena/tls/x")
    with pytest.raises(ValueError, match="tls_cert_file and tls_key_file"):
        MatchServerSettings(match_id="m-1", players=("alice",))


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_every_pool_entry_is_a_match_server_setting(deployment: ServerDeployment) -> None:
    fields = [e.field for e in pool_server_config("pool-1", 8, 7123, deployment)]
    assert len(set(fields)) == len(fields)
    assert set(fields) <= set(MatchServerSettings.model_fields)
    assert not {"match_id", "players"} & set(fields)


def test_a_pool_server_reads_back_its_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for entry in pool_server_config("pool-1", 8, 7123, DEPLOYMENTS[0]):
        assert not isinstance(entry, SecretRef)
        value = entry.path if isinstance(entry, FilePath) else entry.value
        monkeypatch.setenv(env_name(entry.field), value)
    settings = MatchServerSettings()
    assert settings.pooled
    assert (settings.server_id, settings.capacity, settings.match_id) == ("pool-1", 8, None)
    assert settings.port == 7123
