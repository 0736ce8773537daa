CREATE UNIQUE INDEX users_username_key ON users (lower(username));
DROP INDEX users_username_canonical_key;
ALTER TABLE users DROP COLUMN username_canonical;
