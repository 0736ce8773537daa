-- Dead letter of the results stream: one row per `tradearena dlq redrive` or `drop`
-- of one entry. The row is written (committed) before the Redis change, then
-- completed with its outcome; `outcome` NULL means the process stopped in between
-- (whether the entry is still in the dead letter tells what happened).
-- depends: 0100_results

CREATE TABLE dead_letter_audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action       text NOT NULL CHECK (action IN ('redrive', 'drop')),
    entry_id     text NOT NULL,          -- the dead-letter stream entry
    original_id  text NOT NULL,          -- the results-stream entry it came from
    match_id     text,                   -- from the payload, when it names one
    reason       text NOT NULL,          -- the entry's reason code
    error        text NOT NULL,
    actor        text NOT NULL CHECK (btrim(actor) <> ''),
    note         text NOT NULL CHECK (btrim(note) <> ''),
    payload      jsonb NOT NULL,         -- the whole entry, original result included
    at           timestamptz NOT NULL DEFAULT now(),
    outcome      text CHECK (outcome IN ('done', 'gone', 'failed')),
    stream_id    text,                   -- redrive: the new results-stream entry
    completed_at timestamptz
);
CREATE INDEX dead_letter_audit_entry ON dead_letter_audit (entry_id);
CREATE INDEX dead_letter_audit_match ON dead_letter_audit (match_id) WHERE match_id IS NOT NULL;
CREATE INDEX dead_letter_audit_at ON dead_letter_audit (at);
