-- The control channel's instruction queue: what a device is told to do (sign-in, sign-out,
-- power-save, apply-settings, identify), numbered per device, each acknowledged once by the device
-- (ack_status done | failed | rejected).
CREATE TABLE device_instructions (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('sign-in', 'sign-out', 'power-save', 'apply-settings',
                                       'identify')),
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    acked_at BIGINT,
    ack_status TEXT CHECK (ack_status IN ('done', 'failed', 'rejected')),
    ack_message TEXT,
    UNIQUE (device_id, seq)
);

CREATE INDEX device_instructions_open ON device_instructions (device_id, acked_at, seq);
