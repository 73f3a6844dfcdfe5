-- Helpdesk integrations: tickets arrive by signed webhook, become tasks,
-- and the agent's reply goes back through the outbox (kind
-- helpdesk_reply, allowed since 0007).
--
-- Timestamps are RFC 3339 text in UTC, as in 0001.

create table integrations (
    id                          text primary key,
    account_id                  text not null
                                constraint integrations_account_id_fkey references accounts (id),
    kind                        text not null
                                constraint integrations_kind_check
                                check (kind in ('zendesk', 'intercom', 'chatwoot', 'standard')),
    name                        text not null,
    -- Tickets become tasks of this agent.
    agent_id                    text not null
                                constraint integrations_agent_id_fkey references agents (id),
    -- The inbound signing secret, sealed (AES-256-GCM under a master key
    -- from config, bound to this row); never stored in the clear.
    secret_sealed               text not null,
    -- During a rotation the previous secret is accepted until it expires.
    previous_secret_sealed      text,
    previous_secret_expires_at  text,
    -- Reply-back settings (vendor API base URL and credentials, or the
    -- Standard Webhooks callback URL and its secret), sealed JSON.
    reply_sealed                text,
    -- active | disabled (the reply endpoint answered 410 Gone).
    status                      text not null default 'active'
                                constraint integrations_status_check check (status in ('active', 'disabled')),
    disabled_reason             text,
    -- Deliveries refused for their signature: a counter only (no payload
    -- is kept), with the last refusal's code.
    rejected_count              bigint not null default 0,
    last_rejected_at            text,
    last_rejected_code          text,
    created_at                  text not null,
    updated_at                  text not null,
    -- Deleted integrations keep their rows (tasks and deliveries point at
    -- them) but answer 404 everywhere.
    deleted_at                  text
);

create index integrations_account_id_id_idx on integrations (account_id, id);

-- Every verified delivery, deduplicated by the vendor's event or delivery
-- id in the same transaction as its effect (the task it created, the
-- signal it applied). A replay answers the saved response.
create table integration_deliveries (
    id              text primary key,
    account_id      text not null
                    constraint integration_deliveries_account_id_fkey references accounts (id),
    integration_id  text not null
                    constraint integration_deliveries_integration_id_fkey references integrations (id),
    dedupe_key      text not null,
    -- created | customer_replied | solved | reopened | satisfaction_rated
    event           text not null,
    external_ticket text not null,
    -- What it did: task_created | signal_applied | recorded, and why.
    result          text not null,
    reason          text,
    task_id         text
                    constraint integration_deliveries_task_id_fkey references tasks (id),
    -- The JSON answered the first time, answered again to a duplicate.
    response        text not null,
    received_at     text not null,
    constraint integration_deliveries_integration_id_dedupe_key_key unique (integration_id, dedupe_key)
);

create index integration_deliveries_integration_id_id_idx on integration_deliveries (integration_id, id);

-- A task made from a ticket names its integration; its external_ref is
-- the vendor's ticket id. Signals find the ticket's latest task by both.
alter table tasks add column integration_id text
    constraint tasks_integration_id_fkey references integrations (id);
create index tasks_integration_id_external_ref_idx on tasks (integration_id, external_ref);
