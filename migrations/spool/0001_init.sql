-- The appliance's spool: jobs and their documents. Document bytes live in files next to the database.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- job-id; AUTOINCREMENT never reuses an id
    uuid TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    state INTEGER NOT NULL,
    reasons TEXT NOT NULL,                 -- job-state-reasons, space separated
    message TEXT,
    incoming INTEGER NOT NULL,
    time_created INTEGER NOT NULL,
    time_processing INTEGER,
    time_completed INTEGER,
    time_last_document INTEGER NOT NULL,
    impressions INTEGER NOT NULL DEFAULT 0,
    sheets INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    attributes BLOB NOT NULL               -- job template attributes, IPP-encoded
);
CREATE TABLE documents (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    format TEXT NOT NULL,
    compression TEXT NOT NULL,
    name TEXT,
    size INTEGER NOT NULL,
    PRIMARY KEY (job_id, number)
);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
