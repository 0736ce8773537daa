"""The match archive: a stored result's match log, compressed, in PostgreSQL; then the
match's Redis keys expire after a grace period.

An idempotent follow-up of the results worker's transaction, not part of it: the log
is read from Redis (megabytes for a long match, compressed off the event loop) and a
result must never wait for, or be dead-lettered because of, its archive. The
follow-up runs in the background (the worker reads on meanwhile) right after the
result's commit (also for a duplicate delivery) and
again from a periodic sweep that finds, in PostgreSQL, stored results without an
archive or archives whose keys have no expiry yet: the database is the to-do list, so
a worker dying between the two steps loses nothing. Archiving inserts with
ON CONFLICT DO NOTHING (once per match, whoever races); the keys get their expiry
only after the archive row is committed, so an unarchived match never expires.

Modules: `retention` (which keys expire, pure), `db` (the PostgreSQL rows),
`metrics`, `archiver` (Redis in, PostgreSQL out, then the expiry).
The format itself is `tradearena.contracts.archive`.
"""
