-- The OpenAI-compatible gateway (issue 18).
--
-- Model calls keep the provider's cached-prompt and reasoning shares of
-- their tokens, each priced at its own rate.
alter table model_calls add column cached_tokens bigint not null default 0;
alter table model_calls add column reasoning_tokens bigint not null default 0;

-- Every call made through the gateway, attributed or not. Written behind
-- the response, in batches. An attributed call (`Bounty-Task`) counts in
-- its task's cost once the task exists (its row is copied to
-- `model_calls` and `task_id` set); until then, and for unattributed
-- calls, it counts here.
create table gateway_calls (
    id                text collate "C" primary key,
    account_id        text collate "C" not null
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
    prompt_tokens     bigint not null,
    cached_tokens     bigint not null,
    completion_tokens bigint not null,
    reasoning_tokens  bigint not null,
    -- The provider sent no usage: Bounty counted the tokens itself.
    usage_counted     boolean not null,
    latency_us        bigint not null,
    cost_micros       bigint not null,
    currency          text not null,
    byok              boolean not null,
    cache_hit         boolean not null,
    streamed          boolean not null,
    -- How the call is paid for: as part of its task's outcome, at cost
    -- plus the plan's markup, or not at all (the operator's cost).
    billing           text not null
                      constraint gateway_calls_billing_check check (billing in ('task', 'cost_plus', 'free')),
    -- cost_plus: what the customer is charged for the call.
    charge_micros     bigint not null,
    error_code        text,
    error_message     text,
    created_at        timestamptz not null
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
