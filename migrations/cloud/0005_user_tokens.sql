-- Personal access tokens: a user's Bearer credential for IPP clients that hold one instead of a
-- password (the Infrastructure Printer accepts Basic or Bearer). Only the SHA-256 of the token is
-- kept; it is shown once when made.
CREATE TABLE user_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX user_tokens_user ON user_tokens (user_id);
