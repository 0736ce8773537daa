"""The results worker: match results from the Redis stream into PostgreSQL, never lost.

Match servers XADD one entry per finished (or cancelled) match to
`keys.RESULTS_STREAM`, field `result` = `tradearena.contracts.results.MatchResult` JSON.
This worker reads them with a consumer group (`keys.RESULTS_GROUP`):

* **One transaction per match, idempotent by match id.** The transaction
  upserts `matches`, then inserts the marker row `match_results(match_id)`; if
  the marker already exists the transaction is rolled back, so a duplicate
  delivery (a republished result, a retried entry, two workers racing on a
  reclaimed entry) changes nothing. Then players, trades, ledger lines,
  OpenSkill ratings and one `match_result` notification per player.
* **XACK after commit**, never before: a worker that dies mid-way leaves the
  entry pending; another worker takes it over with XAUTOCLAIM once it has been
  idle `claim_idle_ms`.
* **Retries with backoff** (tenacity, exponential with jitter). Connection
  problems (PostgreSQL down, restarting, failing over) and serialization
  failures or deadlocks are *transient*: retried for as long as they last, the
  entry stays pending. Any other error is retried `max_attempts` times, then the
  entry is dead-lettered.
* **Dead letter** (`keys.RESULTS_DEAD_LETTER`, with the original entry id, a
  reason code and the raw payload), in the same MULTI as the XACK: poison
  messages at once (no `result` field, bad JSON, unknown `schema_version`,
  validation errors, unknown mode, player ids that are not user ids), entries
  delivered more than `max_deliveries` times, and repeated non-transient failures.
  Codes and fields: `tradearena.contracts.deadletter`; `tradearena dlq` (with
  `lobby.results.deadletter`) redrives or drops them.
* **Metrics** (Prometheus): processed, duplicates, dead-lettered by reason,
  store retries, store latency, the group's lag and pending count, and the dead
  letter's length and oldest age.

Modules: `settings`, `parsing` (what is poison, what is transient), `store` (the
PostgreSQL transaction), `metrics`, `consumer` (the consumer-group loop), `main`
(the process: probes, signals, live notifications).
"""
