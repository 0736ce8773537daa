ALTER TABLE match_options DROP COLUMN invited_ids;
