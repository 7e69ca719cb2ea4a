-- Jobs held for release (issue 18, docs/release.md): created held on a queue with `release = "pin"`
-- or `"sign-in"` (or sent with a job-password, PWG 5100.11), printed only once released. Only the
-- argon2 hash of the PIN is kept, of the octets the client sent with its job-password-encryption
-- (a PIN typed later is hashed the same way first). `failed`/`locked_until` are the per-job
-- wrong-PIN limit; `released` is set, once, in the transaction that releases the job, so that a
-- replayed release finds it set and prints nothing.
CREATE TABLE release_holds (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    mode TEXT NOT NULL,                    -- 'pin' | 'sign-in'
    pin_hash TEXT,                         -- argon2id PHC string; NULL in sign-in mode
    encryption TEXT NOT NULL DEFAULT 'none', -- job-password-encryption: none | md5 | sha2-256
    pin_assigned INTEGER NOT NULL DEFAULT 0, -- 1: the appliance picked the PIN (none was sent)
    failed INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    created INTEGER NOT NULL,
    released INTEGER
);
