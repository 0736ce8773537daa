-- Results worker: one row per stored match result, the idempotency marker.
-- The worker inserts it first in the transaction that stores a result; a second
-- delivery of the same match finds it and changes nothing.
-- depends: 0002_matches

CREATE TABLE match_results (
    match_id       text PRIMARY KEY REFERENCES matches (id) ON DELETE CASCADE,
    stream_id      text NOT NULL,          -- the Redis stream entry it came from
    schema_version integer NOT NULL,
    bankroll       numeric NOT NULL CHECK (bankroll > 0),  -- of the mode, for PnL
    rated          boolean NOT NULL,       -- ratings were updated from it
    stored_at      timestamptz NOT NULL DEFAULT now()
);

-- Season and daily leaderboards: net PnL of finished matches in the window.
CREATE VIEW leaderboard_results AS
SELECT mp.user_id,
       m.ended_at,
       mp.rank,
       mp.equity - r.bankroll AS pnl
FROM match_players mp
JOIN matches m ON m.id = mp.match_id
JOIN match_results r ON r.match_id = mp.match_id
WHERE m.phase = 'finished' AND mp.equity IS NOT NULL;
