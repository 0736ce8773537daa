-- Matches and their results: players, fills, ledger audit; ratings; notifications.
-- Money and prices are NUMERIC (exact decimals), never floating point.
-- depends: 0001_accounts

CREATE TABLE matches (
    id          text PRIMARY KEY,
    mode        text NOT NULL,
    format      text NOT NULL,
    symbol      text NOT NULL DEFAULT 'BTCUSDT',
    phase       text NOT NULL,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    ended_at    timestamptz,
    final_price numeric,
    frozen_ms   bigint,
    log_entries integer,
    log_digest  text,
    ledger_digest text
);
-- Admin "live matches" and the results worker's sweeps look matches up by phase.
CREATE INDEX matches_phase ON matches (phase, created_at DESC);
-- Season and daily leaderboards aggregate finished matches by end time.
CREATE INDEX matches_ended ON matches (ended_at DESC) WHERE ended_at IS NOT NULL;

CREATE TABLE match_players (
    match_id    text NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id),
    joined_at   timestamptz NOT NULL DEFAULT now(),
    status      text NOT NULL DEFAULT 'playing'
                CHECK (status IN ('playing', 'finished', 'abandoned', 'cancelled')),
    rank        integer CHECK (rank >= 1),
    equity      numeric,
    realized_pnl numeric,
    fees        numeric CHECK (fees >= 0),
    trades      integer NOT NULL DEFAULT 0 CHECK (trades >= 0),
    rating_delta double precision,
    PRIMARY KEY (match_id, user_id)
);
-- Match history: a player's matches, newest first, keyset-paginated on
-- (joined_at, match_id). joined_at is copied from the match's formation.
CREATE INDEX match_players_history ON match_players (user_id, joined_at DESC, match_id DESC);

CREATE TABLE trades (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    match_id     text NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id),
    reason       text NOT NULL,
    side         text NOT NULL CHECK (side IN ('buy', 'sell')),
    qty          numeric NOT NULL CHECK (qty > 0),
    price        numeric NOT NULL CHECK (price > 0),
    fee          numeric NOT NULL CHECK (fee >= 0),
    realized_pnl numeric NOT NULL,
    loss_capped  boolean NOT NULL DEFAULT false,
    ref          text NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX trades_match ON trades (match_id, at);
CREATE INDEX trades_player ON trades (user_id, at DESC);

-- The double-entry ledger of a match, as the match server recorded it (audit).
CREATE TABLE ledger_lines (
    match_id text NOT NULL REFERENCES matches (id) ON DELETE CASCADE,
    seq      integer NOT NULL,
    at       timestamptz NOT NULL,
    debit    text NOT NULL,
    credit   text NOT NULL,
    amount   numeric NOT NULL CHECK (amount >= 0),
    kind     text NOT NULL,
    user_id  uuid REFERENCES users (id),
    ref      text NOT NULL,
    PRIMARY KEY (match_id, seq)
);

-- Skill (OpenSkill): mu/sigma are statistics, not money, so double precision.
CREATE TABLE ratings (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    mu             double precision NOT NULL,
    sigma          double precision NOT NULL CHECK (sigma > 0),
    ordinal        double precision NOT NULL,
    matches_played integer NOT NULL DEFAULT 0 CHECK (matches_played >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- All-time leaderboard: top N by ordinal, ties by user id.
CREATE INDEX ratings_leaderboard ON ratings (ordinal DESC, user_id);

CREATE TABLE notifications (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
-- A player's notifications newest first; the partial one counts/lists unread ones.
CREATE INDEX notifications_user ON notifications (user_id, id DESC);
CREATE INDEX notifications_unread ON notifications (user_id, id DESC) WHERE read_at IS NULL;
