-- Print-anywhere (issue 18, docs/release.md "Print-anywhere"): each account's follow-me queue
-- holds jobs in the cloud until the user releases one to a printer. One text for SQLite and
-- PostgreSQL, as in 0001: BIGINT seconds, BIGINT 0/1 flags, text made by the application.

-- One row per account that ever used its queue: the account's next follow-me job id, taken with
-- one `UPDATE ... RETURNING` (two instances cannot hand out the same id).
CREATE TABLE follow_me_queues (
    account TEXT PRIMARY KEY REFERENCES users (email) ON DELETE CASCADE,
    next_job_id BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);

-- Held jobs. status: receiving (Create-Job, documents still coming) -> held -> released |
-- deleted | expired. A release is one conditional UPDATE (status = 'held') in the transaction
-- that creates the job on the target printer, so of two simultaneous releases exactly one
-- changes the row; the other finds it released (HTTP 409).
CREATE TABLE held_jobs (
    account TEXT NOT NULL REFERENCES users (email) ON DELETE CASCADE,
    job_id BIGINT NOT NULL,
    uuid TEXT NOT NULL,
    name TEXT NOT NULL,
    -- Encoded job template attributes, handed on to the target printer's job.
    attributes TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('receiving', 'held', 'released', 'deleted', 'expired')),
    pages BIGINT,
    size BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    released_printer TEXT,
    released_job_id BIGINT,
    PRIMARY KEY (account, job_id)
);
CREATE INDEX held_jobs_status ON held_jobs (status, created_at);

-- Documents of held jobs; blob is the blob store's key. A release hands the key over to the
-- printer's job (infra_documents) and clears it here; a deletion or expiry clears it and
-- deletes the blob.
CREATE TABLE held_documents (
    account TEXT NOT NULL,
    job_id BIGINT NOT NULL,
    number BIGINT NOT NULL,
    format TEXT NOT NULL,
    compression TEXT NOT NULL,
    name TEXT NOT NULL,
    blob TEXT,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account, job_id, number),
    FOREIGN KEY (account, job_id) REFERENCES held_jobs (account, job_id) ON DELETE CASCADE
);

-- The group setting "release held jobs at group sign-in" and the printer they go to.
ALTER TABLE group_settings ADD COLUMN release_at_sign_in BIGINT NOT NULL DEFAULT 0;
ALTER TABLE group_settings ADD COLUMN release_printer TEXT;
