-- Match archive: one row per finished match whose result is stored, written by the
-- results worker after the result's transaction (an idempotent follow-up: ON CONFLICT
-- DO NOTHING), before the match's Redis keys are given an expiry.
-- `data` is the replay file (header, log entries, engine result as JSON lines),
-- compressed by `codec`; see tradearena/contracts/archive.py and docs/archive.md.
-- depends: 0100_results

CREATE TABLE match_archive (
    match_id         text PRIMARY KEY REFERENCES match_results (match_id) ON DELETE CASCADE,
    format           integer NOT NULL,                 -- archive.ARCHIVE_FORMAT
    codec            text NOT NULL,                    -- archive.Codec
    data             bytea NOT NULL,
    raw_bytes        bigint NOT NULL CHECK (raw_bytes > 0),
    compressed_bytes bigint NOT NULL CHECK (compressed_bytes = octet_length(data)),
    log_entries      integer NOT NULL CHECK (log_entries >= 0),
    log_digest       text NOT NULL,                    -- equals matches.log_digest
    created_at       timestamptz NOT NULL DEFAULT now(),
    redis_expire_at  timestamptz                       -- set once the Redis keys got a TTL
);
-- Already compressed: stored out of line without a second (pglz) compression attempt.
ALTER TABLE match_archive ALTER COLUMN data SET STORAGE EXTERNAL;
-- The worker's sweep: archived matches whose Redis keys have no expiry yet.
CREATE INDEX match_archive_unexpired ON match_archive (created_at) WHERE redis_expire_at IS NULL;
-- The sweep also finds stored results not archived yet, newest first, by stored_at.
CREATE INDEX match_results_stored ON match_results (stored_at);
