-- Inbound Stripe webhooks: deduplicated by event id in the transaction of
-- their effect; account status and invoices follow them.
--
-- Timestamps are RFC 3339 text in UTC, as in 0001.

-- active | past_due | suspended
alter table accounts add column status text not null default 'active';
alter table accounts add column stripe_subscription_id text;

create table stripe_events (
    id           text primary key,
    type         text not null,
    account_id   text,
    -- handled | ignored
    outcome      text not null,
    received_at  text not null
);

create table invoices (
    id                  text primary key,
    account_id          text not null
                        constraint invoices_account_id_fkey references accounts (id),
    status              text not null,
    currency            text not null,
    amount_due          integer not null,
    amount_paid         integer not null,
    total               integer not null,
    period_start        text,
    period_end          text,
    hosted_invoice_url  text,
    created_at          text not null,
    updated_at          text not null
);

create index invoices_account_id_id_idx on invoices (account_id, id);
