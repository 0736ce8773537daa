CREATE OR REPLACE VIEW leaderboard_results AS
SELECT mp.user_id,
       m.ended_at,
       mp.rank,
       mp.equity - r.bankroll AS pnl
FROM match_players mp
JOIN matches m ON m.id = mp.match_id
JOIN match_results r ON r.match_id = mp.match_id
WHERE m.phase = 'finished' AND mp.equity IS NOT NULL;
DROP TABLE match_options;
