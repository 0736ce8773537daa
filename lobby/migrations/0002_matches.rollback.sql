DROP TABLE notifications;
DROP TABLE ratings;
DROP TABLE ledger_lines;
DROP TABLE trades;
DROP TABLE match_players;
DROP TABLE matches;
