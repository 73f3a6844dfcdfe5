-- Events out (issue 19): webhook endpoints, the events they receive, and
-- each delivery attempt. An event's delivery to one endpoint is an outbox
-- row (`webhook_event`), written in the event's transaction.

-- A customer's webhook endpoints: where its events are delivered, signed
-- with its own `whsec_` secret (sealed at rest, shown once). During a
-- rotation the previous secret also signs until `previous_expires_at`.
create table webhook_endpoints (
    id                       text collate "C" primary key,
    account_id               text collate "C" not null
                             constraint webhook_endpoints_account_id_fkey references accounts (id),
    livemode                 boolean not null,
    url                      text not null,
    description              text,
    -- JSON array of event types; empty: every type.
    event_types              text not null,
    secret_sealed            text not null,
    previous_secret_sealed   text,
    previous_expires_at      timestamptz,
    enabled                  boolean not null,
    disabled_reason          text,
    -- When deliveries started failing without a success since (null: none
    -- failing); five days of it disables the endpoint.
    failing_since            timestamptz,
    created_at               timestamptz not null,
    updated_at               timestamptz not null
);

create index webhook_endpoints_account_idx on webhook_endpoints (account_id, livemode, id);

-- Events, written in the transaction of the change they describe.
create table events (
    id          text collate "C" primary key,
    account_id  text collate "C" not null
                constraint events_account_id_fkey references accounts (id),
    livemode    boolean not null,
    type        text not null,
    -- The event's `data.object`, as JSON.
    object      text not null,
    created_at  timestamptz not null
);

create index events_account_idx on events (account_id, livemode, id);

-- Every try at delivering an event to an endpoint: what the endpoint
-- answered (status, a truncated body) or the error, and how long it took.
create table webhook_attempts (
    id           text collate "C" primary key,
    account_id   text collate "C" not null,
    endpoint_id  text collate "C" not null,
    event_id     text collate "C" not null,
    outbox_id    text not null,
    status       integer,
    latency_ms   bigint not null,
    response     text,
    error        text,
    created_at   timestamptz not null
);

create index webhook_attempts_endpoint_idx on webhook_attempts (account_id, endpoint_id, id);

alter table outbox drop constraint outbox_kind_check;
alter table outbox add constraint outbox_kind_check
    check (kind in ('meter_event', 'meter_event_reversal', 'stripe_customer',
                    'stripe_subscription', 'stripe_subscription_item', 'helpdesk_reply', 'webhook_event'));
