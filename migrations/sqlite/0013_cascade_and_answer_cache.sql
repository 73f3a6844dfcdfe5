-- The margin engine, first part: cascade routing and the verified-answer
-- cache.

-- An agent version's routing policy (bounty_core::routing::RoutingPolicy,
-- JSON): cascade, cache and shadow settings. Versions before this one have
-- none.
alter table agent_versions add column routing text not null default '{}';

-- What the verifiers decided about the output of an answering model call
-- (pass | fail | pending); null for judge calls, failed calls and calls
-- recorded before this migration. A cascade has one per step.
alter table model_calls add column verdict text;
-- A shadow call: a student model run beside the live task, whose cost and
-- verdict never touch the task's outcome or charge.
alter table model_calls add column shadow boolean not null default false;
-- Shadow runs' cost over a period, for the margin report.
create index model_calls_shadow_idx on model_calls (account_id, created_at) where shadow;

-- Verdicts per model on each agent (every version), for the cascade's
-- pass-rate floor and for the distillation comparison: `live` counts the
-- route's models, `shadow` the student's runs. Moved in the transaction
-- that records the verdict.
create table agent_model_stats (
    account_id  text not null
                constraint agent_model_stats_account_id_fkey references accounts (id),
    agent_id    text not null,
    model       text not null,
    role        text not null
                constraint agent_model_stats_role_check check (role in ('live', 'shadow')),
    tried       integer not null,
    passed      integer not null,
    -- What those calls cost, in `currency` (the model's price currency):
    -- the average answering call, for the raw-cost estimate of
    -- `bounty report margins`.
    cost_micros integer not null,
    currency    text not null,
    updated_at  text not null,
    constraint agent_model_stats_pkey primary key (account_id, agent_id, model, role)
);

-- Verified answers: written only in the transaction that makes an outcome
-- resolved, removed when that outcome is reversed. Keyed per account, per
-- agent version and per normalized request (bounty_core::routing::cache_key),
-- so an answer is never served to another account or another version.
create table answer_cache (
    account_id     text not null
                   constraint answer_cache_account_id_fkey references accounts (id),
    agent_id       text not null,
    agent_version  integer not null,
    cache_key      text not null,
    -- The task whose resolved outcome verified this answer.
    task_id        text not null,
    output         text not null,
    model          text not null,
    -- What producing the answer cost (every answering step): a hit saves it.
    cost_micros    integer not null,
    currency       text not null,
    created_at     text not null,
    expires_at     text not null,
    constraint answer_cache_pkey primary key (account_id, agent_id, agent_version, cache_key)
);

create index answer_cache_task_id_idx on answer_cache (task_id);

-- Cache use per account, agent and UTC day: lookups, hits and the cost
-- the hits saved. Written with the attempt that looked up.
create table cache_days (
    account_id    text not null
                  constraint cache_days_account_id_fkey references accounts (id),
    agent_id      text not null,
    day           text not null,
    currency      text not null,
    lookups       integer not null,
    hits          integer not null,
    saved_micros  integer not null,
    constraint cache_days_pkey primary key (account_id, agent_id, day, currency)
);
