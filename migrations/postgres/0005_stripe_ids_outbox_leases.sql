-- The account's Stripe customer, once the outbox has created it; and
-- leases on outbox rows, so several senders never send one row at once.

alter table accounts add column stripe_customer_id text;
alter table outbox add column lease_until timestamptz;
