-- no-transaction
-- An outcome may end `escalated`: the ticket went to a person, so the
-- agent did not resolve it. It is never charged, and the usage rollup
-- counts it apart from `failed`.
--
-- SQLite cannot change a CHECK constraint in place, so `outcomes` and
-- `usage_days` are copied. Other tables reference `outcomes`, and SQLite
-- only lets foreign keys be switched off outside a transaction: this
-- migration runs outside sqlx's transaction (the first line) and makes
-- its own. A crash before COMMIT leaves the old tables; a crash after it,
-- before sqlx records the migration, reruns it, which copies the new
-- tables again to the same result.
pragma foreign_keys = off;

begin;

create table outcomes_new (
    id                    text primary key,
    account_id            text not null
                          constraint outcomes_account_id_fkey references accounts (id),
    task_id               text not null
                          constraint outcomes_task_id_fkey references tasks (id),
    agent_id              text not null,
    agent_version         integer not null,
    outcome_type          text not null,
    status                text not null
                          constraint outcomes_status_check
                          check (status in ('verifying', 'provisional', 'resolved', 'failed', 'reversed',
                                            'escalated')),
    -- JSON VerificationPolicy of the agent version, and its SHA-256.
    policy                text not null,
    policy_hash           text not null,
    window_ends_at        text not null,
    goodwill_ends_at      text not null,
    -- JSON RatingReceipt, once charged.
    rating                text,
    cu_milli              integer not null,
    amount_micros         integer not null,
    currency              text not null,
    -- Sum of the task's model calls (every attempt, failed ones, judges).
    inference_cost_micros integer not null,
    inference_currency    text not null,
    created_at            text not null,
    updated_at            text not null,
    decided_at            text,
    livemode              boolean not null default true,
    -- One outcome per task.
    constraint outcomes_task_id_key unique (task_id)
);
insert into outcomes_new (id, account_id, task_id, agent_id, agent_version, outcome_type, status, policy,
    policy_hash, window_ends_at, goodwill_ends_at, rating, cu_milli, amount_micros, currency,
    inference_cost_micros, inference_currency, created_at, updated_at, decided_at, livemode)
select id, account_id, task_id, agent_id, agent_version, outcome_type, status, policy,
    policy_hash, window_ends_at, goodwill_ends_at, rating, cu_milli, amount_micros, currency,
    inference_cost_micros, inference_currency, created_at, updated_at, decided_at, livemode
from outcomes;
drop table outcomes;
alter table outcomes_new rename to outcomes;
create index outcomes_account_id_id_idx on outcomes (account_id, id);
create index outcomes_provisional_window_idx on outcomes (window_ends_at) where status = 'provisional';
create index outcomes_account_id_livemode_id_idx on outcomes (account_id, livemode, id);
create index outcomes_account_id_decided_at_idx on outcomes (account_id, livemode, decided_at);

create table usage_days_new (
    account_id            text not null
                          constraint usage_days_account_id_fkey references accounts (id),
    livemode              boolean not null default true,
    -- 'YYYY-MM-DD' of decided_at (UTC); sorts as the date does.
    day                   text not null,
    agent_id              text not null,
    status                text not null
                          constraint usage_days_status_check
                          check (status in ('resolved', 'failed', 'reversed', 'escalated')),
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
select account_id, livemode, day, agent_id, status, currency, inference_currency, outcomes, cu_milli,
    amount_micros, inference_cost_micros
from usage_days;
drop table usage_days;
alter table usage_days_new rename to usage_days;

commit;

pragma foreign_keys = on;
