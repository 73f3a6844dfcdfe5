-- The daily usage rollup: per account, UTC day of decision, agent, status
-- and currencies, the count of decided outcomes and their sums. The
-- overview, the usage pages, `/v1/usage` and `bounty usage` read it instead
-- of every decided outcome of the period: at 100,000 outcomes a month the
-- scan took about a second on SQLite, the rollup reads at most days x
-- agents x statuses rows whatever the volume.
--
-- It is written in the transaction that decides an outcome or changes a
-- decided one (a reversal moves the outcome from `resolved` to `reversed`
-- on its decision day), so it is exact at every commit. Rows whose count
-- fell to zero are kept; readers skip them.

create table usage_days (
    account_id            text not null
                          constraint usage_days_account_id_fkey references accounts (id),
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
    constraint usage_days_pkey primary key (account_id, day, agent_id, status, currency, inference_currency)
);

-- What was decided before this migration.
insert into usage_days (account_id, day, agent_id, status, currency, inference_currency, outcomes, cu_milli,
    amount_micros, inference_cost_micros)
select account_id, substr(decided_at, 1, 10), agent_id, status, currency, inference_currency, count(*),
    sum(cu_milli), sum(amount_micros), sum(inference_cost_micros)
from outcomes
where decided_at is not null and status in ('resolved', 'failed', 'reversed')
group by account_id, substr(decided_at, 1, 10), agent_id, status, currency, inference_currency;

-- Periods that start or end inside a day read that day's outcomes directly.
create index outcomes_account_id_decided_at_idx on outcomes (account_id, decided_at);
