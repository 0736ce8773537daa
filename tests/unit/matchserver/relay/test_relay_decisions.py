"""The relay's pure parts: lease decisions (time passed in) and settings validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from matchserver.relay.leadership import Change, Leadership
from matchserver.relay.settings import RelaySettings


def test_leadership_follows_lease_outcomes_and_expires_locally() -> None:
    lead = Leadership(ttl_ms=2000, renew_ms=500, acquire_ms=200)
    assert lead.check_interval_ms() == 200
    assert lead.on_result(False, 0) is Change.NONE
    assert lead.on_result(True, 100) is Change.ELECTED
    assert lead.is_leader(100) and lead.check_interval_ms() == 500
    assert lead.valid_until == 100 + 2000 - 250  # counted from when the call was sent
    assert lead.on_result(True, 600) is Change.NONE and lead.valid_until == 2350
    assert lead.on_error(2000) is Change.NONE and lead.is_leader(2000)
    assert not lead.is_leader(2350)
    assert lead.on_error(2350) is Change.DEPOSED and not lead.leader
    assert lead.on_result(True, 3000) is Change.ELECTED
    assert lead.on_result(False, 3500) is Change.DEPOSED
    assert lead.on_result(True, 4000) is Change.ELECTED
    assert lead.lost() is Change.DEPOSED and lead.lost() is Change.NONE


def test_relay_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEARENA_RELAY_SYMBOLS", "btcusdt, ethusdt")
    monkeypatch.setenv("TRADEARENA_RELAY_SOURCE", "replay")
    monkeypatch.setenv("TRADEARENA_RELAY_REPLAY_FILES", "a.csv,b.csv")
    settings = RelaySettings()
    assert settings.relay_symbols == ("BTCUSDT", "ETHUSDT")
    assert settings.relay_replay_files == (Path("a.csv"), Path("b.csv"))
    assert settings.relay_history_ms >= 10 * 60 * 1000
    monkeypatch.setenv("TRADEARENA_RELAY_REPLAY_FILES", "")
    with pytest.raises(ValidationError, match="REPLAY_FILES"):
        RelaySettings()
    monkeypatch.setenv("TRADEARENA_RELAY_SOURCE", "synthetic")
    monkeypatch.setenv("TRADEARENA_RELAY_LEASE_RENEW_MS", "1000")
    with pytest.raises(ValidationError, match="third of the lease TTL"):
        RelaySettings()
    monkeypatch.setenv("TRADEARENA_RELAY_LEASE_RENEW_MS", "500")
    monkeypatch.setenv("TRADEARENA_RELAY_HISTORY_MS", "60000")
    with pytest.raises(ValidationError):
        RelaySettings()  # less than 10 minutes of history


def test_feed_relay_command_refuses_invalid_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradearena.launcher.cli import EXIT_BAD_INPUT, main

    monkeypatch.setenv("TRADEARENA_RELAY_SOURCE", "carrier-pigeon")
    assert main(["feed-relay"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("feed-relay: invalid setting TRADEARENA_RELAY_SOURCE: ")
    assert err.count("\n") == 1
