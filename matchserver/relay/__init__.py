"""The feed relay (`tradearena feed-relay`): one upstream per symbol, fanned out to every match server through Redis.

Several replicas run; per symbol, the one holding a Redis lease publishes.

Leader election: the lease is `SET feed_leader NX PX ttl` with a random
token per process; the holder renews it every `renew_ms` (a few times per
TTL) and releases it on SIGTERM, both through Lua scripts that act only if
the key still holds the caller's token. Followers retry `SET NX` every
`acquire_ms`, so a crashed leader is replaced within about one TTL, a
stopped one within `acquire_ms`.

No duplicates, even in split brain: every publish is one Lua script that
checks the lease token and XADDs with an explicit stream ID derived from the
tick itself (`event_ms-seq`: Binance trade time and aggregate trade id, the
synthetic grid slot, the replay position). A deposed leader that does not
know it yet is refused by the token check; an ID not greater than the
stream's last one (the same tick twice, or an older one) is refused by Redis
itself. Both refusals are counted, never published.

Followers are cold: connected to nothing upstream. The product holds one
upstream connection per symbol (Binance counts connection attempts per IP),
and a new leader resumes from the stream's last tick (synthetic: its price
and slot; replay: its archive time), so the stream continues smoothly; the
price of cold standby is that ticks during a failover (about one TTL) are
not published: the gap is bounded by the TTL.

The stream is trimmed by ID (`MINID ~ now - history_ms`): what is kept is
measured in time, whatever the tick rate, so a (re)starting match server
always finds its delay window (`matchserver.feed.relay_source.RelaySource`
reads it, then blocks for new ticks). The wire format is
`tradearena.contracts.feed`.

Modules: `settings`, `leadership` (pure lease decisions), `lease` (the Redis side
and its Lua), `metrics`, `publisher` (one symbol's election and publish loop),
`main` (the process: probes, signals, start-up).
"""
