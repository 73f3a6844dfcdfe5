-- The operator: whoever runs Bounty and sells the work. Operators are not
-- users of any account: they sign in to the console at `/ops` and call
-- `/v1/ops/*` with `bk_op_` keys, and they see every account, with the
-- inference cost and margin customers never see. Their tables mirror the
-- customer's (users, sessions, api_keys) without an account column, so no
-- customer login, session or key can ever act as an operator.

create table operators (
    id             text collate "C" primary key,
    email          text not null
                   constraint operators_email_key unique
                   constraint operators_email_check check (email = lower(email) and length(email) > 0),
    password_hash  text not null,
    created_at     timestamptz not null,
    last_login_at  timestamptz
);

create table operator_sessions (
    id           text collate "C" primary key,
    token_hash   text not null
                 constraint operator_sessions_token_hash_key unique,
    operator_id  text collate "C" not null
                 constraint operator_sessions_operator_id_fkey references operators (id),
    csrf_secret  text not null,
    created_at   timestamptz not null,
    expires_at   timestamptz not null,
    revoked_at   timestamptz
);

create index operator_sessions_operator_id_idx on operator_sessions (operator_id);

-- `bk_op_` keys: only the SHA-256 of the key is kept, as for api_keys.
create table operator_keys (
    id            text collate "C" primary key,
    operator_id   text collate "C" not null
                  constraint operator_keys_operator_id_fkey references operators (id),
    name          text not null,
    prefix        text not null,
    key_hash      text not null
                  constraint operator_keys_key_hash_key unique,
    created_at    timestamptz not null,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);

create index operator_keys_operator_id_id_idx on operator_keys (operator_id, id);
