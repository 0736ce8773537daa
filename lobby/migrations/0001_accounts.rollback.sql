DROP TABLE admin_audit;
DROP TABLE refresh_tokens;
DROP TABLE player_settings;
DROP TABLE users;
