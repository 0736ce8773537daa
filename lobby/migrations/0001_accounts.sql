-- Accounts: users, their settings, rotating refresh tokens, admin audit log.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text NOT NULL CHECK (char_length(username) BETWEEN 3 AND 32),
    password_hash text NOT NULL,
    role          text NOT NULL DEFAULT 'player' CHECK (role IN ('player', 'admin')),
    banned_at     timestamptz,
    ban_reason    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Login and registration look usernames up case-insensitively.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE player_settings (
    user_id          uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    display_name     text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 32),
    preferred_mode   text NOT NULL DEFAULT 'standard',
    preferred_format text NOT NULL DEFAULT 'auto',
    sound            boolean NOT NULL DEFAULT true,
    notifications    boolean NOT NULL DEFAULT true,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per refresh token ever issued; only its SHA-256 is stored.
-- A family is the chain of rotations from one login: presenting a token that was
-- already rotated (used_at set) revokes every token of its family.
CREATE TABLE refresh_tokens (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id      uuid NOT NULL,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash     bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    parent_id      uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    family_started timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
-- Ban and logout-everywhere revoke a user's live tokens.
CREATE INDEX refresh_tokens_user_live ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

CREATE TABLE admin_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor_id    uuid NOT NULL REFERENCES users (id),
    action      text NOT NULL,
    target_kind text NOT NULL,
    target_id   text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_target ON admin_audit (target_kind, target_id, id DESC);
