-- Outcomes and their verdict receipts, the double-entry ledger, plans,
-- credits, spending caps and budget reservations.

-- Billing settings of an account: its plan and optional monthly cap. A
-- row is created with the default plan the first time it is needed; its
-- update is also the lock that serialises an account's charges, credit
-- draws and reservations.
create table account_billing (
    account_id          text collate "C" primary key
                        constraint account_billing_account_id_fkey references accounts (id),
    -- JSON Plan.
    plan                text not null,
    -- Monthly spending cap in micros of the plan's currency; null: none.
    monthly_cap_micros  bigint,
    -- JSON array of percents of the cap at which an alert is recorded.
    alert_percents      text not null,
    updated_at          timestamptz not null
);

create table outcomes (
    id                    text collate "C" primary key,
    account_id            text collate "C" not null
                          constraint outcomes_account_id_fkey references accounts (id),
    task_id               text collate "C" not null
                          constraint outcomes_task_id_fkey references tasks (id),
    agent_id              text collate "C" not null,
    agent_version         integer not null,
    outcome_type          text not null,
    status                text not null
                          constraint outcomes_status_check
                          check (status in ('verifying', 'provisional', 'resolved', 'failed', 'reversed')),
    -- JSON VerificationPolicy of the agent version, and its SHA-256.
    policy                text not null,
    policy_hash           text not null,
    window_ends_at        timestamptz not null,
    goodwill_ends_at      timestamptz not null,
    -- JSON RatingReceipt, once charged.
    rating                text,
    cu_milli              bigint not null,
    amount_micros         bigint not null,
    currency              text not null,
    -- Sum of the task's model calls (every attempt, failed ones, judges).
    inference_cost_micros bigint not null,
    inference_currency    text not null,
    created_at            timestamptz not null,
    updated_at            timestamptz not null,
    decided_at            timestamptz,
    -- One outcome per task.
    constraint outcomes_task_id_key unique (task_id)
);

create index outcomes_account_id_id_idx on outcomes (account_id, id);
create index outcomes_provisional_window_idx on outcomes (window_ends_at) where status = 'provisional';

-- The receipt: every event of an outcome with its evidence, in order.
create table outcome_events (
    outcome_id      text collate "C" not null
                    constraint outcome_events_outcome_id_fkey references outcomes (id),
    seq             integer not null,
    account_id      text collate "C" not null,
    -- verified | signal | window_lapsed | goodwill_reversal | task_failed
    event           text not null,
    from_status     text,
    to_status       text not null,
    -- none | charge | reverse
    effect          text not null,
    -- JSON array of VerifierVerdict, for `verified`.
    verdicts        text,
    -- JSON Signal, for `signal`.
    signal          text,
    policy_version  integer not null,
    policy_hash     text not null,
    -- SHA-256 of the event's inputs (verdicts, signal), for audit.
    inputs_hash     text not null,
    reason          text not null,
    created_at      timestamptz not null,
    constraint outcome_events_pkey primary key (outcome_id, seq)
);

-- The ledger: append-only, double-entry. Balances are sums of transfers.
-- `unit` is `mCU` (milli compute units) or an ISO currency (micros).
create table ledger_transfers (
    id           text collate "C" primary key,
    account_id   text collate "C" not null
                 constraint ledger_transfers_account_id_fkey references accounts (id),
    debit        text not null,
    credit       text not null,
    amount       bigint not null,
    unit         text not null,
    -- credit_grant | included | credit_draw | charge | charge_money, and
    -- <kind>_reversal for their reversals.
    kind         text not null,
    outcome_id   text collate "C"
                 constraint ledger_transfers_outcome_id_fkey references outcomes (id),
    reverses_id  text collate "C"
                 constraint ledger_transfers_reverses_id_fkey references ledger_transfers (id),
    memo         text,
    created_at   timestamptz not null,
    constraint ledger_transfers_amount_check check (amount > 0),
    constraint ledger_transfers_accounts_check check (debit <> credit),
    -- At most one transfer of each kind per outcome: a second charge for
    -- one outcome is impossible.
    constraint ledger_transfers_outcome_id_kind_key unique (outcome_id, kind),
    -- A transfer is reversed at most once.
    constraint ledger_transfers_reverses_id_key unique (reverses_id)
);

create index ledger_transfers_account_id_idx on ledger_transfers (account_id, created_at);

-- Money held for running tasks against the monthly cap.
create table budget_reservations (
    task_id        text collate "C" primary key
                   constraint budget_reservations_task_id_fkey references tasks (id),
    account_id     text collate "C" not null,
    amount_micros  bigint not null,
    created_at     timestamptz not null
);

create index budget_reservations_account_id_idx on budget_reservations (account_id);

-- Alerts: recorded once per threshold per month.
create table billing_events (
    id          text collate "C" primary key,
    account_id  text collate "C" not null
                constraint billing_events_account_id_fkey references accounts (id),
    kind        text not null,
    period      text not null,
    threshold   integer not null,
    detail      text not null,
    created_at  timestamptz not null,
    constraint billing_events_account_id_kind_period_threshold_key unique (account_id, kind, period, threshold)
);
