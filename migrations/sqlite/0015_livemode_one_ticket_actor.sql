-- Test mode is Stripe's test mode: every object a `bk_test_` key makes
-- (task, outcome, ledger transfer, usage row, outbox row, integration)
-- carries `livemode = false`, and every reader of balances, usage, caps
-- and lists filters on it, so the two books never mix. Rows written
-- before this migration are live: that is what they were billed as.

alter table tasks add column livemode boolean not null default true;
alter table outcomes add column livemode boolean not null default true;
alter table ledger_transfers add column livemode boolean not null default true;
alter table outbox add column livemode boolean not null default true;
alter table integrations add column livemode boolean not null default true;

-- The account's customer in Stripe's test mode (`stripe.test_secret_key`),
-- apart from its live one.
alter table accounts add column stripe_test_customer_id text;

-- The usage rollup gets the mode in its key, right after the account, so
-- a period read of one mode stays one index range. SQLite cannot change a
-- primary key in place: the table is copied.
create table usage_days_new (
    account_id            text not null
                          constraint usage_days_account_id_fkey references accounts (id),
    livemode              boolean not null default true,
    -- 'YYYY-MM-DD' of decided_at (UTC); sorts as the date does.
    day                   text not null,
    agent_id              text not null,
    status                text not null
                          constraint usage_days_status_check
                          check (status in ('resolved', 'failed', 'reversed')),
    currency              text not null,
    inference_currency    text not null,
    outcomes              integer not null,
    cu_milli              integer not null,
    amount_micros         integer not null,
    inference_cost_micros integer not null,
    constraint usage_days_pkey
        primary key (account_id, livemode, day, agent_id, status, currency, inference_currency)
);
insert into usage_days_new (account_id, livemode, day, agent_id, status, currency, inference_currency, outcomes,
    cu_milli, amount_micros, inference_cost_micros)
select account_id, 1, day, agent_id, status, currency, inference_currency, outcomes, cu_milli, amount_micros,
    inference_cost_micros
from usage_days;
drop table usage_days;
alter table usage_days_new rename to usage_days;

-- The balance and period sums (0010) read one mode: the mode joins their
-- keys so they stay index-only.
drop index ledger_transfers_credit_sum_idx;
drop index ledger_transfers_debit_sum_idx;
drop index ledger_transfers_kind_created_idx;
create index ledger_transfers_credit_sum_idx on ledger_transfers (account_id, livemode, credit, unit, amount);
create index ledger_transfers_debit_sum_idx on ledger_transfers (account_id, livemode, debit, unit, amount);
create index ledger_transfers_kind_created_idx
    on ledger_transfers (account_id, livemode, kind, created_at, amount);

-- Lists of one mode (0012), newest first.
drop index tasks_account_id_status_id_idx;
drop index tasks_account_id_agent_id_id_idx;
create index tasks_account_id_livemode_id_idx on tasks (account_id, livemode, id);
create index tasks_account_id_status_id_idx on tasks (account_id, livemode, status, id);
create index tasks_account_id_agent_id_id_idx on tasks (account_id, livemode, agent_id, id);
create index outcomes_account_id_livemode_id_idx on outcomes (account_id, livemode, id);
drop index outcomes_account_id_decided_at_idx;
create index outcomes_account_id_decided_at_idx on outcomes (account_id, livemode, decided_at);

-- One ticket, one task: a helpdesk's `created` event for a ticket that
-- already has a task on that integration creates nothing. The key is a
-- column of its own, set only by intake from now on, so tickets that were
-- (wrongly) made into two tasks before cannot stop this migration.
alter table tasks add column intake_ticket text;
create unique index tasks_integration_id_intake_ticket_key on tasks (integration_id, intake_ticket);

-- Who made a receipt event: `api_key:key_…`, `integration:int_…`,
-- `operator:<name>`, `worker`, `window` (a lapse). Null before this
-- migration.
alter table outcome_events add column actor text;
