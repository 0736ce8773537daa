-- Usernames compare by a canonical form computed by the lobby in Python
-- (lobby/accounts/usernames.py: ASCII letters lowered, nothing else), never by the
-- server's locale-dependent lower(). Existing names match the registration pattern
-- (ASCII only), so translate() gives them the same canonical form the lobby computes.
-- depends: 0001_accounts

ALTER TABLE users ADD COLUMN username_canonical text;
UPDATE users SET username_canonical =
    translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
ALTER TABLE users ALTER COLUMN username_canonical SET NOT NULL;
CREATE UNIQUE INDEX users_username_canonical_key ON users (username_canonical);
DROP INDEX users_username_key;
