-- The printer registry and IPP INFRA Infrastructure Printers (PWG 5100.18). One text for SQLite and
-- PostgreSQL, as in 0001: text ids, BIGINT seconds, BIGINT 0/1 flags. IPP attribute sets are kept
-- as base64 text of an IPP message encoded by printbridge (no BLOB/BYTEA type common to both).
-- Counters that two instances could race on (job ids, event sequence numbers, subscription ids)
-- live in the printers row and are taken with one `UPDATE ... RETURNING`.

CREATE TABLE printers (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organisations (id),
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    -- printer-uuid the device reported (urn:uuid:...); a device that registers again gets the
    -- same printer back.
    uuid TEXT NOT NULL,
    name TEXT NOT NULL,
    location TEXT NOT NULL,
    info TEXT NOT NULL,
    make_and_model TEXT NOT NULL,
    next_job_id BIGINT NOT NULL DEFAULT 1,
    next_event_seq BIGINT NOT NULL DEFAULT 1,
    next_subscription_id BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    config_changed_at BIGINT NOT NULL,
    UNIQUE (org_id, uuid)
);
CREATE INDEX printers_device ON printers (device_id);

-- Users allowed to print on a printer, by address (they authenticate with their cloud password).
CREATE TABLE printer_users (
    printer_id TEXT NOT NULL REFERENCES printers (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (printer_id, email)
);

-- Output devices behind a printer (PWG 5100.18 output-device-uuid), with the printer attributes
-- their Proxy last sent in Update-Output-Device-Attributes.
CREATE TABLE output_devices (
    printer_id TEXT NOT NULL REFERENCES printers (id) ON DELETE CASCADE,
    uuid TEXT NOT NULL,
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    attributes TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (printer_id, uuid)
);

-- Jobs. state is the IPP job-state enum; reasons are space-separated job-state-reasons keywords.
-- complete turns 1 when the last document has arrived: only then is the job fetchable. A job is
-- assigned to one output device by one conditional UPDATE (assigned_device IS NULL).
CREATE TABLE infra_jobs (
    printer_id TEXT NOT NULL REFERENCES printers (id) ON DELETE CASCADE,
    job_id BIGINT NOT NULL,
    uuid TEXT NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    state BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    message TEXT NOT NULL,
    attributes TEXT NOT NULL,
    complete BIGINT NOT NULL DEFAULT 0,
    assigned_device TEXT,
    device_job_state BIGINT,
    device_contact_at BIGINT,
    impressions_completed BIGINT NOT NULL DEFAULT 0,
    k_octets BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    processing_at BIGINT,
    completed_at BIGINT,
    PRIMARY KEY (printer_id, job_id)
);
CREATE INDEX infra_jobs_state ON infra_jobs (printer_id, state, assigned_device);
CREATE INDEX infra_jobs_contact ON infra_jobs (assigned_device, device_contact_at);

-- Documents of jobs; blob is the blob store's key (made by the server, never from the network).
CREATE TABLE infra_documents (
    printer_id TEXT NOT NULL,
    job_id BIGINT NOT NULL,
    number BIGINT NOT NULL,
    format TEXT NOT NULL,
    compression TEXT NOT NULL,
    name TEXT NOT NULL,
    blob TEXT,
    size BIGINT NOT NULL,
    state BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (printer_id, job_id, number),
    FOREIGN KEY (printer_id, job_id) REFERENCES infra_jobs (printer_id, job_id) ON DELETE CASCADE
);

-- Printer subscriptions (RFC 3995) for ippget (RFC 3996) pull delivery. owner is a device id
-- ("device:ID") or a user address; events are space-separated notify-events keywords.
CREATE TABLE infra_subscriptions (
    printer_id TEXT NOT NULL REFERENCES printers (id) ON DELETE CASCADE,
    id BIGINT NOT NULL,
    owner TEXT NOT NULL,
    events TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    lease_seconds BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (printer_id, id)
);

-- Events of a printer, numbered per printer. Waiting Get-Notifications requests on any instance
-- find them here.
CREATE TABLE infra_events (
    printer_id TEXT NOT NULL REFERENCES printers (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    event TEXT NOT NULL,
    job_id BIGINT,
    job_state BIGINT,
    job_reasons TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (printer_id, seq)
);
CREATE INDEX infra_events_time ON infra_events (created_at);
