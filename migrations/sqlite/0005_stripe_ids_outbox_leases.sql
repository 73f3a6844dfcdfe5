-- The account's Stripe customer, once the outbox has created it; and
-- leases on outbox rows, so several senders never send one row at once.
--
-- Timestamps are RFC 3339 text in UTC, as in 0001.

alter table accounts add column stripe_customer_id text;
alter table outbox add column lease_until text;
