-- Events out (issue 19): webhook endpoints, the events they receive, and
-- each delivery attempt. An event's delivery to one endpoint is an outbox
-- row (`webhook_event`), written in the event's transaction.
--
-- Timestamps are RFC 3339 text in UTC, as in 0001.

-- A customer's webhook endpoints: where its events are delivered, signed
-- with its own `whsec_` secret (sealed at rest, shown once). During a
-- rotation the previous secret also signs until `previous_expires_at`.
create table webhook_endpoints (
    id                       text primary key,
    account_id               text not null
                             constraint webhook_endpoints_account_id_fkey references accounts (id),
    livemode                 boolean not null,
    url                      text not null,
    description              text,
    -- JSON array of event types; empty: every type.
    event_types              text not null,
    secret_sealed            text not null,
    previous_secret_sealed   text,
    previous_expires_at      text,
    enabled                  boolean not null,
    disabled_reason          text,
    -- When deliveries started failing without a success since (null: none
    -- failing); five days of it disables the endpoint.
    failing_since            text,
    created_at               text not null,
    updated_at               text not null
);

create index webhook_endpoints_account_idx on webhook_endpoints (account_id, livemode, id);

-- Events, written in the transaction of the change they describe.
create table events (
    id          text primary key,
    account_id  text not null
                constraint events_account_id_fkey references accounts (id),
    livemode    boolean not null,
    type        text not null,
    -- The event's `data.object`, as JSON.
    object      text not null,
    created_at  text not null
);

create index events_account_idx on events (account_id, livemode, id);

-- Every try at delivering an event to an endpoint: what the endpoint
-- answered (status, a truncated body) or the error, and how long it took.
create table webhook_attempts (
    id           text primary key,
    account_id   text not null,
    endpoint_id  text not null,
    event_id     text not null,
    outbox_id    text not null,
    status       integer,
    latency_ms   bigint not null,
    response     text,
    error        text,
    created_at   text not null
);

create index webhook_attempts_endpoint_idx on webhook_attempts (account_id, endpoint_id, id);

-- The outbox is rebuilt with the new kind, as in 0028 (SQLite cannot alter
-- a check constraint; nothing references the outbox).
create table outbox_new (
    id               text primary key,
    account_id       text not null
                     constraint outbox_account_id_fkey references accounts (id),
    kind             text not null
                     constraint outbox_kind_check
                     check (kind in ('meter_event', 'meter_event_reversal', 'stripe_customer',
                                     'stripe_subscription', 'stripe_subscription_item', 'helpdesk_reply',
                                     'webhook_event')),
    transfer_id      text
                     constraint outbox_transfer_id_fkey references ledger_transfers (id),
    payload          text not null,
    idempotency_key  text not null
                     constraint outbox_idempotency_key_key unique,
    status           text not null
                     constraint outbox_status_check check (status in ('pending', 'sent', 'failed')),
    attempts         integer not null,
    next_attempt_at  text not null,
    last_error       text,
    created_at       text not null,
    sent_at          text,
    lease_until      text,
    -- How the effect was delivered, where there is a choice (see 0007).
    sent_as          text,
    livemode         boolean not null default true,
    constraint outbox_transfer_id_kind_key unique (transfer_id, kind)
);

insert into outbox_new (id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
                        next_attempt_at, last_error, created_at, sent_at, lease_until, sent_as, livemode)
select id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
       next_attempt_at, last_error, created_at, sent_at, lease_until, sent_as, livemode
from outbox;

drop table outbox;
alter table outbox_new rename to outbox;

create index outbox_pending_idx on outbox (next_attempt_at) where status = 'pending';
create index outbox_account_id_id_idx on outbox (account_id, id);
