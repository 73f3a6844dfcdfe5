-- Accounts and their API keys.
--
-- Ids are the prefixed strings the API shows (`acct_01J…`): one spelling
-- everywhere, and the ULID part sorts by creation time, so `order by id`
-- is creation order and serves cursor pagination.
-- Timestamps are RFC 3339 text in UTC (how sqlx encodes them); they sort
-- lexically in time order.

create table accounts (
    id          text primary key,
    name        text not null,
    created_at  text not null
);

create table api_keys (
    id            text primary key,
    account_id    text not null
                  constraint api_keys_account_id_fkey references accounts (id),
    name          text not null,
    mode          text not null
                  constraint api_keys_mode_check check (mode in ('live', 'test')),
    -- The first characters of the key, kept for listings (`bk_live_AbCd`).
    prefix        text not null,
    -- SHA-256 of the whole key, hex. The key itself is never stored.
    key_hash      text not null
                  constraint api_keys_key_hash_key unique,
    created_at    text not null,
    last_used_at  text,
    revoked_at    text
);

-- Every listing is "this account's keys, newest first".
create index api_keys_account_id_id_idx on api_keys (account_id, id);
