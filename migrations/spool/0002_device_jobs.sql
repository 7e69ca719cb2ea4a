-- What an output device handed to a downstream IPP printer for a job that has not finished here, so
-- that a retry after a crash asks that printer about its job instead of printing the job twice.
-- A row exists only while its job is unfinished: finishing (or restarting) a job deletes it.
CREATE TABLE device_jobs (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    printer_uri TEXT NOT NULL,
    document INTEGER NOT NULL,      -- last document (0-based) the downstream job carries
    downstream_job_id INTEGER,      -- NULL: a Print-Job is in flight and its answer was not seen
    downstream_job_uuid TEXT,
    submitted INTEGER NOT NULL      -- 1 once the printer acknowledged the (last) document
);
