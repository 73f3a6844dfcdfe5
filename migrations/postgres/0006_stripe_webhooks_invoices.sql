-- Inbound Stripe webhooks: deduplicated by event id in the transaction of
-- their effect; account status and invoices follow them.

-- active | past_due | suspended
alter table accounts add column status text not null default 'active';
alter table accounts add column stripe_subscription_id text;

create table stripe_events (
    id           text collate "C" primary key,
    type         text not null,
    account_id   text collate "C",
    -- handled | ignored
    outcome      text not null,
    received_at  timestamptz not null
);

create table invoices (
    id                  text collate "C" primary key,
    account_id          text collate "C" not null
                        constraint invoices_account_id_fkey references accounts (id),
    status              text not null,
    currency            text not null,
    amount_due          bigint not null,
    amount_paid         bigint not null,
    total               bigint not null,
    period_start        timestamptz,
    period_end          timestamptz,
    hosted_invoice_url  text,
    created_at          timestamptz not null,
    updated_at          timestamptz not null
);

create index invoices_account_id_id_idx on invoices (account_id, id);
