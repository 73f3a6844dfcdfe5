-- Agents (versioned), tasks (the durable queue) and model calls.

create table agents (
    id               text collate "C" primary key,
    account_id       text collate "C" not null
                     constraint agents_account_id_fkey references accounts (id),
    name             text not null,
    -- The version new tasks run; every update adds one.
    current_version  integer not null,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    constraint agents_account_id_name_key unique (account_id, name)
);

create index agents_account_id_id_idx on agents (account_id, id);

-- One row per version, never updated: a task records the version it ran.
create table agent_versions (
    agent_id         text collate "C" not null
                     constraint agent_versions_agent_id_fkey references agents (id),
    version          integer not null,
    account_id       text collate "C" not null,
    name             text not null,
    instructions     text not null,
    -- JSON array of model names, tried in order.
    model_route      text not null,
    -- JSON Schema the output must match, or null.
    output_schema    text,
    outcome_type     text not null,
    verifier_policy  text not null,
    -- JSON object: generation overrides (max_tokens, temperature, seed).
    params           text not null,
    created_at       timestamptz not null,
    constraint agent_versions_pkey primary key (agent_id, version)
);

create table tasks (
    id                  text collate "C" primary key,
    account_id          text collate "C" not null
                        constraint tasks_account_id_fkey references accounts (id),
    agent_id            text collate "C" not null,
    agent_version       integer not null,
    status              text not null
                        constraint tasks_status_check
                        check (status in ('queued', 'running', 'completed', 'failed')),
    -- JSON: {subject, body, customer, metadata}.
    input               text not null,
    external_ref        text,
    idempotency_key     text,
    -- SHA-256 of the request that created the task, to tell a replay from
    -- a different request reusing an Idempotency-Key.
    request_hash        text,
    attempts            integer not null default 0,
    max_attempts        integer not null,
    -- Earliest time a worker may claim it (now, or after a retry backoff).
    run_at              timestamptz not null,
    -- The current claim. A worker's writes are fenced by its lease token,
    -- so a worker whose lease expired cannot finish a task another owns.
    lease_token         text,
    lease_owner         text,
    lease_expires_at    timestamptz,
    output              text,
    -- JSON array of schema violations of the output, or null.
    output_errors       text,
    -- The model that produced the output.
    output_model        text,
    -- JSON array of chat messages.
    transcript          text,
    last_error_code     text,
    last_error_message  text,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    started_at          timestamptz,
    finished_at         timestamptz,
    constraint tasks_agent_version_fkey foreign key (agent_id, agent_version)
        references agent_versions (agent_id, version),
    -- Idempotency: one task per key per account (nulls are distinct).
    constraint tasks_account_id_idempotency_key_key unique (account_id, idempotency_key)
);

create index tasks_account_id_id_idx on tasks (account_id, id);
-- The claim: queued tasks by due time, and running ones by lease expiry.
create index tasks_queued_run_at_idx on tasks (run_at) where status = 'queued';
create index tasks_running_lease_idx on tasks (lease_expires_at) where status = 'running';

-- Every attempt at a task: who ran it and how it ended.
create table task_attempts (
    task_id       text collate "C" not null
                  constraint task_attempts_task_id_fkey references tasks (id),
    attempt       integer not null,
    account_id    text collate "C" not null,
    worker        text not null,
    started_at    timestamptz not null,
    finished_at   timestamptz,
    -- completed | failed | retry | lease_expired; null while running.
    outcome       text,
    error_code    text,
    error_message text,
    constraint task_attempts_pkey primary key (task_id, attempt)
);

create table model_calls (
    id                 text collate "C" primary key,
    account_id         text collate "C" not null
                       constraint model_calls_account_id_fkey references accounts (id),
    task_id            text collate "C" not null
                       constraint model_calls_task_id_fkey references tasks (id),
    attempt            integer not null,
    -- Order of the call within its attempt (the route's fallbacks).
    seq                integer not null,
    model              text not null,
    -- llama | openai; null when the route named an unconfigured model.
    provider           text,
    prompt_tokens      bigint not null,
    completion_tokens  bigint not null,
    latency_us         bigint not null,
    cost_micros        bigint not null,
    currency           text not null,
    cache_hit          boolean not null,
    byok               boolean not null,
    error_code         text,
    error_message      text,
    created_at         timestamptz not null
);

create index model_calls_task_id_idx on model_calls (task_id, attempt, seq);
