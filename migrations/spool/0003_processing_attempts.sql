-- Consecutive attempts to process a job that never ended: the worker adds one before it starts on a
-- job and deletes the row when the attempt ends in any way short of a crash. A row still there at
-- start-up counts the crashes in a row that happened while the job was processing, so a job that
-- crashes the process every time (a "poison" job) can be aborted instead of retried forever.
CREATE TABLE processing_attempts (
    job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    unfinished INTEGER NOT NULL
);
