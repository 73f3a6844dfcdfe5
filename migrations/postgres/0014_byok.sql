-- Bring your own key: an account's own OpenAI-compatible endpoint and key,
-- used for the models configured with `byok = true`. The key is sealed
-- (AES-256-GCM under `secrets.master_keys`, bound to
-- `{account}/byok/api_key`), never logged and never returned: the API
-- shows `key_hint`, its last four characters.
create table account_byok (
    account_id  text collate "C" primary key
                constraint account_byok_account_id_fkey references accounts (id),
    base_url    text not null,
    sealed_key  text not null,
    key_hint    text not null,
    created_at  timestamptz not null,
    updated_at  timestamptz not null
);
