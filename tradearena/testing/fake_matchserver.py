"""A stand-in match-server process for formation tests: a real aiohttp server.

    python fake_matchserver.py MATCH_ID BEHAVIOUR

`ok`: serves /healthz on a free port and prints `READY <port>`; `fail`: exits 3
before being ready; `hang`: never becomes ready. Stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiohttp import web


async def main(match_id: str, behaviour: str) -> int:
    if behaviour == "fail":
        print("FAILING", flush=True)
        return 3
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if behaviour == "ok":
        app = web.Application()

        async def healthz(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok", "match_id": match_id})

        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"READY {port}", flush=True)
        await stop.wait()
        await runner.cleanup()
    else:
        await stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
