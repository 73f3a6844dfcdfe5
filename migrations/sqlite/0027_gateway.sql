-- The OpenAI-compatible gateway (issue 18).
--
-- Model calls keep the provider's cached-prompt and reasoning shares of
-- their tokens, each priced at its own rate.
alter table model_calls add column cached_tokens integer not null default 0;
alter table model_calls add column reasoning_tokens integer not null default 0;

-- Every call made through the gateway, attributed or not. Written behind
-- the response, in batches. An attributed call (`Bounty-Task`) counts in
-- its task's cost once the task exists (its row is copied to
-- `model_calls` and `task_id` set); until then, and for unattributed
-- calls, it counts here.
create table gateway_calls (
    id                text primary key,
    account_id        text not null
                      constraint gateway_calls_account_id_fkey references accounts (id),
    livemode          boolean not null,
    api_key_id        text not null,
    -- The customer's task id (`Bounty-Task`), or null.
    task_ref          text,
    -- The gateway agent of an attributed call.
    agent_id          text,
    -- Bounty's task, once the outcome is reported.
    task_id           text,
    endpoint          text not null
                      constraint gateway_calls_endpoint_check check (endpoint in ('chat', 'embeddings')),
    -- The gateway model the client named, and the configured model that
    -- answered (null when none did).
    model             text not null,
    served_model      text,
    provider          text,
    prompt_tokens     integer not null,
    cached_tokens     integer not null,
    completion_tokens integer not null,
    reasoning_tokens  integer not null,
    -- The provider sent no usage: Bounty counted the tokens itself.
    usage_counted     boolean not null,
    latency_us        integer not null,
    cost_micros       integer not null,
    currency          text not null,
    byok              boolean not null,
    cache_hit         boolean not null,
    streamed          boolean not null,
    -- How the call is paid for: as part of its task's outcome, at cost
    -- plus the plan's markup, or not at all (the operator's cost).
    billing           text not null
                      constraint gateway_calls_billing_check check (billing in ('task', 'cost_plus', 'free')),
    -- cost_plus: what the customer is charged for the call.
    charge_micros     integer not null,
    error_code        text,
    error_message     text,
    created_at        text not null
);

create index gateway_calls_task_ref_idx on gateway_calls (account_id, livemode, task_ref)
    where task_ref is not null;
create index gateway_calls_account_created_idx on gateway_calls (account_id, livemode, created_at);

-- A gateway task is made when its outcome is reported; the customer's id
-- names it, once per account and mode.
alter table tasks add column gateway_ref text;
-- The answer the customer reported, as reported (`output` is what the
-- worker verified and recorded: the same text).
alter table tasks add column reported_output text;
create unique index tasks_account_id_livemode_gateway_ref_key on tasks (account_id, livemode, gateway_ref)
    where gateway_ref is not null;

-- Gateway budgets: limits per account (`scope = 'account'`) or per API
-- key (`scope` = the key's id), each optional.
create table gateway_limits (
    account_id            text not null
                          constraint gateway_limits_account_id_fkey references accounts (id),
    scope                 text not null,
    requests_per_minute   integer,
    tokens_per_minute     integer,
    -- Inference spend on the operator's models (never BYOK), per calendar
    -- month (UTC).
    monthly_spend_micros  integer,
    currency              text not null,
    updated_at            text not null,
    constraint gateway_limits_pkey primary key (account_id, scope)
);

-- What each limited scope used: per minute (`window` = 'YYYY-MM-DDTHH:MM',
-- requests and tokens) and per month ('YYYY-MM', committed spend).
-- Incremented in the transaction that reserves a call, so concurrent calls
-- serialise on the row and none passes a limit.
create table gateway_windows (
    account_id    text not null,
    scope         text not null,
    window_key    text not null,
    requests      integer not null,
    tokens        integer not null,
    spend_micros  integer not null,
    constraint gateway_windows_pkey primary key (account_id, scope, window_key)
);

-- A call's estimated spend, held until its real cost is committed. A
-- holder that dies leaves its reservation to expire (`expires_at`), so a
-- crash never keeps a budget full.
create table gateway_reservations (
    id            text primary key,
    account_id    text not null,
    scope         text not null,
    month_key     text not null,
    spend_micros  integer not null,
    expires_at    text not null
);

create index gateway_reservations_scope_idx on gateway_reservations (account_id, scope, month_key, expires_at);

-- The gateway's exact-match response cache (opt-in per gateway model).
-- Each non-streaming answer of a cached model, to a call that named a
-- task, is kept here; it is served only while that task's outcome is
-- resolved (a join at lookup, so a reversal withdraws it). The key is the
-- SHA-256 of the account, the mode, the gateway model and every request
-- parameter that can change the answer; the account is also a column of
-- the lookup, so no entry crosses tenants.
create table gateway_cache (
    account_id   text not null,
    livemode     boolean not null,
    key_hash     text not null,
    task_ref     text not null,
    call_id      text not null,
    response     text not null,
    created_at   text not null,
    constraint gateway_cache_pkey primary key (account_id, livemode, key_hash, task_ref)
);
