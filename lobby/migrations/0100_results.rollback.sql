DROP VIEW leaderboard_results;
DROP TABLE match_results;
