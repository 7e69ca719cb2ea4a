-- The cloud's accounts and device authorization (RFC 8628). One text for SQLite and PostgreSQL:
-- ids are text made by the application, times are BIGINT seconds since the Unix epoch, flags are
-- BIGINT 0/1 (the sqlx Any driver knows no booleans or timestamps common to both).

CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- One organisation per user; the address is stored lower-cased.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations (id),
    email TEXT NOT NULL UNIQUE,
    -- argon2 PHC string; NULL until the user sets a password.
    password_hash TEXT,
    role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    created_at BIGINT NOT NULL
);

-- Web sign-in sessions. Only a hash of the cookie value is kept.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- One-time links (set a password, enrol). Only a hash of the token is kept.
CREATE TABLE one_time_links (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- Fixed-window counters shared by every instance (failed sign-ins, user-code guesses, requests).
CREATE TABLE throttle (
    bucket TEXT NOT NULL,
    subject TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (bucket, subject)
);

-- Registered devices (appliances); created when a device authorization is first redeemed.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations (id),
    name TEXT NOT NULL,
    make_and_model TEXT NOT NULL,
    uuid TEXT NOT NULL,
    location TEXT NOT NULL,
    client_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Users allowed on a device's printers, by address (the user may not have enrolled yet).
CREATE TABLE device_users (
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    granted_by TEXT REFERENCES users (id),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, email)
);

-- RFC 8628 device authorization requests. status: pending -> approved | denied; approved -> issued
-- (tokens handed out once). Only a hash of the device_code is kept; user_code is the normalised
-- 8-letter code without the dash.
CREATE TABLE device_authorizations (
    id TEXT PRIMARY KEY,
    device_code_hash TEXT NOT NULL UNIQUE,
    user_code TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    device_name TEXT NOT NULL,
    device_make_and_model TEXT NOT NULL,
    device_uuid TEXT NOT NULL,
    device_location TEXT NOT NULL,
    user_email TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    interval_seconds BIGINT NOT NULL,
    last_poll_at BIGINT,
    last_poll_slow BIGINT NOT NULL DEFAULT 0,
    org_id TEXT REFERENCES organisations (id),
    decided_by TEXT REFERENCES users (id),
    decided_at BIGINT,
    approved_email TEXT,
    device_id TEXT REFERENCES devices (id)
);
CREATE INDEX device_authorizations_status ON device_authorizations (status, expires_at);
CREATE INDEX device_authorizations_device ON device_authorizations (device_uuid, status);
CREATE INDEX device_authorizations_user ON device_authorizations (user_email, status);

-- OAuth tokens of devices. Only hashes are kept. kind: access | refresh.
CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX oauth_tokens_device ON oauth_tokens (device_id);
