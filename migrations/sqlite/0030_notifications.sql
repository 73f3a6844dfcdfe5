-- Timestamps are RFC 3339 text in UTC, as in 0001.
--
-- Notices to people (issue 19): to an account's owners (a cap threshold,
-- low credits, a webhook endpoint disabled, a dispute decided) or to the
-- operator (an outbox row parked). Each is written in the transaction of
-- its cause, shown in the dashboard until read (the bell), logged, and
-- emailed when a mailer is configured: `email_state` is `pending` until
-- the mailer sends it (`sent`) or gives up (`failed`); a notice older than
-- a day is never emailed (`expired`), so a mailer configured later does
-- not send old news.
create table notifications (
    id                 text primary key,
    audience           text not null
                       constraint notifications_audience_check check (audience in ('account', 'operator')),
    -- The account it is for; null for the operator's.
    account_id         text
                       constraint notifications_account_id_fkey references accounts (id),
    kind               text not null,
    title              text not null,
    body               text not null,
    created_at         text not null,
    read_at            text,
    email_state        text not null
                       constraint notifications_email_state_check
                       check (email_state in ('pending', 'sent', 'failed', 'expired')),
    email_attempts     integer not null,
    email_lease_until  text,
    email_error        text
);

create index notifications_account_idx on notifications (account_id, id);
create index notifications_email_idx on notifications (created_at) where email_state = 'pending';
