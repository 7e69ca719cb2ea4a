-- The appliance's registration requests (specs/registration.md flow A). One row per request; the
-- request's state (model::registration::Registration, including the current device code) is
-- kept as JSON in `record`, rewritten after every step, so a restart resumes where it stood.
CREATE TABLE registrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids are shown to users
    user_email TEXT NOT NULL,
    created_at INTEGER NOT NULL,           -- Unix seconds; the rate limits count these
    finished INTEGER NOT NULL DEFAULT 0,   -- 1 once the outcome is reached and told
    record TEXT NOT NULL
);
CREATE INDEX registrations_user ON registrations (user_email, created_at);
CREATE INDEX registrations_open ON registrations (finished);
