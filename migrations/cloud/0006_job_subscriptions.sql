-- Job subscriptions (RFC 3995 §11.1.1, Create-Job-Subscriptions) on the Infrastructure Printers:
-- a subscription with a job_id receives only that job's events; NULL is a printer subscription.
ALTER TABLE infra_subscriptions ADD COLUMN job_id BIGINT;
