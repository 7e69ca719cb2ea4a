-- job-pages-completed (PWG 5100.7): the document pages a job prints, copies included, known once
-- it is converted, and how many of them were printed.
ALTER TABLE jobs ADD COLUMN pages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN pages_completed INTEGER NOT NULL DEFAULT 0;
