-- The agent's tool calls: one row per call a step made, with what it
-- sent (arguments), what came back (status, a redacted and truncated
-- response) and how long it took, for the transcript, the receipt and
-- effort plans' tool time. Never updated.
create table tool_calls (
    id               text primary key,
    account_id       text not null
                     constraint tool_calls_account_id_fkey references accounts (id),
    task_id          text not null
                     constraint tool_calls_task_id_fkey references tasks (id),
    attempt          integer not null,
    turn             integer not null,
    -- Order of the call within its attempt.
    seq              integer not null,
    tool             text not null,
    -- The model's id for the call (`call_…`).
    call_id          text not null,
    -- JSON arguments as the model wrote them (customer data, no secrets:
    -- a tool's secrets live in its sealed headers).
    arguments        text not null,
    -- HTTP status, null when no answer came.
    status           integer,
    outcome          text not null
                     constraint tool_calls_outcome_check
                     check (outcome in ('ok', 'client_error', 'down', 'refused', 'handoff')),
    latency_us       integer not null,
    -- JSON: the redacted response (status, latency, body truncated, header
    -- secrets replaced).
    response         text not null,
    -- Sent with side-effecting calls, derived from the task, the turn and
    -- the call, so a retry repeats the same key.
    idempotency_key  text,
    created_at       text not null,
    constraint tool_calls_attempt_seq_key unique (task_id, attempt, seq)
);

create index tool_calls_account_task_idx on tool_calls (account_id, task_id);
