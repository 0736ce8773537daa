-- How a match was made, written by the lobby before its server is asked for (so the
-- row exists before any result): queued ranked, queued casual (parties), or private
-- by invite. A match without a row is ranked (every match made before this table).
-- Casual and private matches are unrated: the results worker leaves ratings alone and
-- the season and daily boards leave them out.
-- depends: 0102_match_archive

CREATE TABLE match_options (
    match_id   text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('ranked', 'casual', 'private')),
    rated      boolean NOT NULL,
    host_id    uuid REFERENCES users (id),   -- who created a private match
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (rated = (kind = 'ranked'))
);

-- Season and daily leaderboards: net PnL of finished rated matches in the window.
CREATE OR REPLACE VIEW leaderboard_results AS
SELECT mp.user_id,
       m.ended_at,
       mp.rank,
       mp.equity - r.bankroll AS pnl
FROM match_players mp
JOIN matches m ON m.id = mp.match_id
JOIN match_results r ON r.match_id = mp.match_id
WHERE m.phase = 'finished' AND mp.equity IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM match_options o WHERE o.match_id = mp.match_id AND NOT o.rated);
