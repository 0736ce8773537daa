"""TLS on the players' port: wss:// with a real certificate, reloaded when it rotates.

A real match server with a certificate from a throwaway CA, mounted like a Kubernetes
Secret volume (`tls.crt`/`tls.key` through a `..data` symlink). Real clients dial
`127-0-0-1.play.test`, a name only their own host map knows, and trust the CA through
their options. Real Redis.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509

from tradearena.launcher.dial import DialOptions
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import MatchServerProcess
from tradearena.testing.tls import SecretVolume, ServerCertificate, ThrowawayCA, dashed
from tradearena.testing.waiting import eventually

HOST = f"{dashed('127.0.0.1')}.play.test"


@pytest.fixture
def ca(tmp_path: Path) -> ThrowawayCA:
    return ThrowawayCA.create(tmp_path / "ca")


@pytest.fixture
def volume(tmp_path: Path, ca: ThrowawayCA) -> SecretVolume:
    volume = SecretVolume(tmp_path / "secret")
    volume.install(ca.issue(["*.play.test"], "first"))
    return volume


@pytest.fixture
def server(tmp_path: Path, redis_url: str, volume: SecretVolume) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path,
        redis_url,
        "m-tls",
        ("alice", "bob"),
        env_extra={"TRADEARENA_DURATION_MS": "600000"},
        tls=(volume.cert_file, volume.key_file),
        host_name=HOST,
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def dial(ca: ThrowawayCA) -> DialOptions:
    return DialOptions(ca_file=ca.cert_file, hosts={"*.play.test": "127.0.0.1"})


@pytest.fixture
async def alice(server: MatchServerProcess, dial: DialOptions) -> AsyncIterator[MatchClient]:
    client = MatchClient(server, "alice", dial)
    yield client
    await client.close()


async def served_serial(port: int, dial: DialOptions) -> int:
    """The serial of the certificate a new connection is given (verified as HOST)."""
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=dial.ssl_context(), server_hostname=HOST
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return int(x509.load_der_x509_certificate(der).serial_number)
    finally:
        writer.close()
        await writer.wait_closed()


async def reloads(server: MatchServerProcess, outcome: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"{server.admin_url}/metrics") as r:
        text = await r.text()
    found = re.search(rf'tradearena_match_tls_reloads_total{{outcome="{outcome}"}} (\S+)', text)
    return int(float(found.group(1))) if found else 0


async def test_a_player_connects_over_wss_and_plays(
    server: MatchServerProcess, alice: MatchClient, dial: DialOptions
) -> None:
    assert server.url == f"https://{HOST}:{server.port}"
    bob = MatchClient(server, "bob", dial)
    try:
        await alice.connect()
        await bob.connect()
        await alice.wait_for("phase", lambda d: d["phase"] == "live")
        tick = await alice.wait_for("tick")
        assert float(tick["price"]) > 0
        ack = await alice.act(
            type="open", client_order_id="a-1", side="long", margin="1000", leverage=10
        )
        assert (ack["ok"], ack["code"]) == (True, "ok")
        await alice.wait_for("fill", lambda d: d["ref"] == "a-1")
    finally:
        await bob.close()


async def test_plaintext_is_refused_on_the_tls_port(server: MatchServerProcess) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{server.port}/healthz") as resp:
                await resp.read()
    # ...and a client that does not trust the CA does not get through either.
    with pytest.raises(ssl.SSLCertVerificationError):
        await served_serial(server.port, DialOptions())


async def test_the_probes_answer_over_https(server: MatchServerProcess, dial: DialOptions) -> None:
    async with dial.session() as http:
        for path in ("/healthz", "/readyz"):
            async with http.get(f"{server.url}{path}") as resp:
                assert resp.status == 200, path


async def test_a_rotated_certificate_serves_new_connections_and_spares_open_ones(
    server: MatchServerProcess,
    alice: MatchClient,
    dial: DialOptions,
    ca: ThrowawayCA,
    volume: SecretVolume,
) -> None:
    first = await served_serial(server.port, dial)
    await alice.connect()
    await alice.wait_for("tick")
    second: ServerCertificate = ca.issue(["*.play.test"], "second")
    assert second.serial != first

    volume.install(second)

    async def rotated() -> bool:
        return await served_serial(server.port, dial) == second.serial

    await eventually(rotated, within=10)
    assert await reloads(server, "loaded") == 1
    # The connection opened before the rotation is still served.
    assert alice.sio.connected
    seen = sum(1 for kind, _ in alice.events if kind == "tick")
    await alice.until(lambda evs: sum(1 for k, _ in evs if k == "tick") > seen + 2)
    assert alice.sio.connected


async def test_a_bad_pair_is_refused_and_the_current_certificate_kept(
    server: MatchServerProcess, dial: DialOptions, ca: ThrowawayCA, volume: SecretVolume
) -> None:
    first = await served_serial(server.port, dial)
    second = ca.issue(["*.play.test"], "second")
    other = ca.issue(["*.play.test"], "other")
    # The new certificate with some other key: they do not match.
    volume.update(second.cert_file.read_bytes(), other.key_file.read_bytes())

    async def refused() -> bool:
        return await reloads(server, "failed") == 1

    await eventually(refused, within=10)
    assert await served_serial(server.port, dial) == first
    assert "tls certificate reload failed" in server.logs()
    # The next good pair is taken.
    volume.install(second)

    async def rotated() -> bool:
        return await served_serial(server.port, dial) == second.serial

    await eventually(rotated, within=10)


def test_a_server_whose_certificate_does_not_load_exits_with_a_reason(
    tmp_path: Path, redis_url: str, ca: ThrowawayCA
) -> None:
    leaf = ca.issue(["*.play.test"], "leaf")
    other = ca.issue(["*.play.test"], "other")
    proc = MatchServerProcess(
        tmp_path, redis_url, "m-bad", ("alice",), tls=(leaf.cert_file, other.key_file)
    )
    proc.start(wait_ready=False)
    try:
        assert proc.wait(30) == 2
        assert "tls certificate could not be loaded" in proc.logs()
    finally:
        proc.stop()
