-- Gateway calls billed at cost plus the plan's markup (issue 18).
--
-- The billing sweep bills a batch of an account's unbilled cost-plus calls
-- as one `cost_plus` ledger transfer (receivable → revenue, in money) and
-- marks each call with it, in one transaction: a call is billed once, and
-- a crash bills none of the batch. The transfer's meter event goes to
-- Stripe through the outbox on the gateway's own meter.
--
-- Timestamps are RFC 3339 text in UTC, as in 0001.
alter table gateway_calls add column billed_transfer_id text;

-- What the sweep looks for: cost-plus calls with a charge, not billed yet.
create index gateway_calls_unbilled_idx on gateway_calls (account_id, livemode, currency)
    where billing = 'cost_plus' and billed_transfer_id is null and charge_micros > 0;
-- The calls a transfer billed, for its line on the customer's charges.
create index gateway_calls_billed_idx on gateway_calls (billed_transfer_id)
    where billed_transfer_id is not null;

-- A new outbox kind: the gateway's cost-plus price, added to an account's
-- subscription. SQLite cannot alter a check constraint, so the outbox is
-- rebuilt with the wider kind list, as in 0007. Nothing references the
-- outbox, so the copy, drop and rename keep every row.
create table outbox_new (
    id               text primary key,
    account_id       text not null
                     constraint outbox_account_id_fkey references accounts (id),
    kind             text not null
                     constraint outbox_kind_check
                     check (kind in ('meter_event', 'meter_event_reversal', 'stripe_customer',
                                     'stripe_subscription', 'stripe_subscription_item', 'helpdesk_reply')),
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
    -- How the effect was delivered, where there is a choice (see 0007).
    sent_as          text,
    livemode         boolean not null default true,
    constraint outbox_transfer_id_kind_key unique (transfer_id, kind)
);

insert into outbox_new (id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
                        next_attempt_at, last_error, created_at, sent_at, lease_until, sent_as, livemode)
select id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
       next_attempt_at, last_error, created_at, sent_at, lease_until, sent_as, livemode
from outbox;

drop table outbox;
alter table outbox_new rename to outbox;

create index outbox_pending_idx on outbox (next_attempt_at) where status = 'pending';
create index outbox_account_id_id_idx on outbox (account_id, id);
