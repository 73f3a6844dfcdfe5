-- Stripe billing, completed: the catalogue `bounty stripe setup` creates
-- (meter, product, prices), a subscription for every account, and how
-- each reversal was undone in Stripe.
--
-- Timestamps are RFC 3339 text in UTC, as in 0001.
--
-- SQLite cannot alter a check constraint, so the outbox is rebuilt with
-- the wider kind list. Nothing references the outbox, so the copy, drop
-- and rename keep every row and every foreign key it has.
--
-- New kinds:
-- - stripe_subscription: the account's subscription on the metered price.
-- - helpdesk_reply: an agent's reply posted back to a helpdesk ticket
--   (the helpdesk integrations write it; listed here so the table is
--   rebuilt once).

create table outbox_new (
    id               text primary key,
    account_id       text not null
                     constraint outbox_account_id_fkey references accounts (id),
    kind             text not null
                     constraint outbox_kind_check
                     check (kind in ('meter_event', 'meter_event_reversal', 'stripe_customer',
                                     'stripe_subscription', 'helpdesk_reply')),
    transfer_id      text
                     constraint outbox_transfer_id_fkey references ledger_transfers (id),
    payload          text not null,
    idempotency_key  text not null
                     constraint outbox_idempotency_key_key unique,
    status           text not null
                     constraint outbox_status_check check (status in ('pending', 'sent', 'failed')),
    attempts         integer not null,
    next_attempt_at  text not null,
    last_error       text,
    created_at       text not null,
    sent_at          text,
    lease_until      text,
    -- How the effect was delivered, where there is a choice: a reversal
    -- is `cancel` (a meter event adjustment, inside Stripe's 24 h window)
    -- or `credit` (a customer balance credit, after it). Reconciliation
    -- reads it: a credited charge still counts on Stripe's meter.
    sent_as          text,
    constraint outbox_transfer_id_kind_key unique (transfer_id, kind)
);

insert into outbox_new (id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
                        next_attempt_at, last_error, created_at, sent_at, lease_until, sent_as)
select id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
       next_attempt_at, last_error, created_at, sent_at, lease_until,
       case when kind = 'meter_event_reversal' and status = 'sent' then 'cancel' end
from outbox;

drop table outbox;
alter table outbox_new rename to outbox;

create index outbox_pending_idx on outbox (next_attempt_at) where status = 'pending';
create index outbox_account_id_id_idx on outbox (account_id, id);

-- What `bounty stripe setup` created or found in Stripe: `meter`,
-- `product`, and `price:<lookup key>` for each plan price in use.
create table stripe_catalog (
    key         text primary key,
    value       text not null,
    updated_at  text not null
);
