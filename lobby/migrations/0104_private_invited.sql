-- Who was invited to a private match by name (besides its players): they may watch it
-- as spectators and replay it, like its players; anyone else may not.
-- depends: 0103_match_options

ALTER TABLE match_options ADD COLUMN invited_ids uuid[] NOT NULL DEFAULT '{}';
