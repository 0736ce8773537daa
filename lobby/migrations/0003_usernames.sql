-- Usernames compare by a canonical form computed by the lobby in Python
-- (lobby/accounts/usernames.py: ASCII letters lowered, nothing else), never by the
-- server's locale-dependent lower(). Existing names match the registration pattern
-- (ASCII only), so translate() gives them the same canonical form the lobby computes.
-- depends: 0001_accounts
-- contract: part of the first release's schema (0.1.0, with 0001 and 0002): no
-- earlier release ever ran against users without username_canonical.

ALTER TABLE users ADD COLUMN username_canonical text;
UPDATE users SET username_canonical =
    translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
ALTER TABLE users ALTER COLUMN username_canonical SET NOT NULL;
CREATE UNIQUE INDEX users_username_canonical_key ON users (username_canonical);
DROP INDEX users_username_key;
