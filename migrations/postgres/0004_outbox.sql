-- The transactional outbox: external effects (Stripe meter events, their
-- cancellations, Stripe customers) written in the same transaction as the
-- state change that causes them, and sent later with a stable
-- idempotency key.

create table outbox (
    id               text collate "C" primary key,
    account_id       text collate "C" not null
                     constraint outbox_account_id_fkey references accounts (id),
    -- meter_event | meter_event_reversal | stripe_customer
    kind             text not null
                     constraint outbox_kind_check
                     check (kind in ('meter_event', 'meter_event_reversal', 'stripe_customer')),
    -- The ledger transfer the effect reports, when there is one.
    transfer_id      text collate "C"
                     constraint outbox_transfer_id_fkey references ledger_transfers (id),
    -- JSON: what to send.
    payload          text not null,
    -- Derived from our own ids; the receiver dedupes on it.
    idempotency_key  text not null
                     constraint outbox_idempotency_key_key unique,
    status           text not null
                     constraint outbox_status_check check (status in ('pending', 'sent', 'failed')),
    attempts         integer not null,
    next_attempt_at  timestamptz not null,
    last_error       text,
    created_at       timestamptz not null,
    sent_at          timestamptz,
    -- One effect of each kind per transfer.
    constraint outbox_transfer_id_kind_key unique (transfer_id, kind)
);

create index outbox_pending_idx on outbox (next_attempt_at) where status = 'pending';
create index outbox_account_id_id_idx on outbox (account_id, id);
