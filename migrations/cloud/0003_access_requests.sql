-- Access requests: a registered device asks for another user to be allowed on it (and on its
-- printers). status: pending -> approved | denied. An administrator of the device's organisation
-- decides on the admin page; the decision is one conditional UPDATE (status = 'pending').
CREATE TABLE access_requests (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL REFERENCES organisations (id),
    email TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_by TEXT REFERENCES users (id),
    decided_at BIGINT
);

CREATE INDEX access_requests_org_status ON access_requests (org_id, status);
CREATE INDEX access_requests_device ON access_requests (device_id, status);
