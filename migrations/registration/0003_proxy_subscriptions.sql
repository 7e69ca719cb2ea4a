-- The printer subscription (RFC 3995) each shared queue's INFRA Proxy holds on its Infrastructure
-- Printer (docs/bridge.md "Inbound"): kept across restarts, so that a start renews it
-- (Renew-Subscription) instead of creating another that piles up in the cloud until its lease
-- lapses, and canceled (Cancel-Subscription) when the queue is no longer shared.
CREATE TABLE proxy_subscriptions (
    cloud TEXT NOT NULL,               -- the cloud's base URL: printer ids are the cloud's
    printer_id TEXT NOT NULL,          -- the cloud printer the queue is shared as
    subscription_id INTEGER NOT NULL,  -- notify-subscription-id
    next_sequence INTEGER NOT NULL,    -- the next notify-sequence-number wanted (RFC 3996 §5)
    PRIMARY KEY (cloud, printer_id)
);
