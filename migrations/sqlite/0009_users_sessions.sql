-- Dashboard users, their server-side sessions, and login attempts.
--
-- A user belongs to one account and logs in by email. The email is unique
-- over all accounts (login finds the user by email alone), and the store
-- lower-cases it before every write and lookup, so uniqueness is
-- case-insensitive; the check keeps a mixed-case row from ever landing.
-- The password is kept only as an argon2id PHC string, hashed by the web
-- edge; the store never sees a password.

create table users (
    id             text primary key,
    account_id     text not null
                   constraint users_account_id_fkey references accounts (id),
    email          text not null
                   constraint users_email_key unique
                   constraint users_email_check check (email = lower(email) and length(email) > 0),
    password_hash  text not null,
    role           text not null
                   constraint users_role_check check (role in ('owner', 'member')),
    created_at     text not null,
    last_login_at  text
);

create index users_account_id_id_idx on users (account_id, id);

-- A session is found by the SHA-256 of its cookie's random token, so a
-- copy of this table logs nobody in. Each session carries its own CSRF
-- secret, which every form of that session echoes. Expiry is absolute
-- (`expires_at`, set by the web edge at login); a revoked session
-- (logout, password change) stays as a row until it expires.
create table sessions (
    id           text primary key,
    token_hash   text not null
                 constraint sessions_token_hash_key unique,
    user_id      text not null
                 constraint sessions_user_id_fkey references users (id),
    account_id   text not null
                 constraint sessions_account_id_fkey references accounts (id),
    csrf_secret  text not null,
    created_at   text not null,
    expires_at   text not null,
    revoked_at   text
);

create index sessions_user_id_idx on sessions (user_id);

-- Every login attempt, successful or not, for the sliding-window rate
-- limit (per email and per client address). Kept in the database so the
-- limit holds across processes; rows older than a day are pruned as new
-- ones arrive. Not tenant data: an attempt may name no existing user.
create table login_attempts (
    id          text primary key,
    email       text not null,
    ip          text not null,
    succeeded   boolean not null,
    created_at  text not null
);

create index login_attempts_email_created_at_idx on login_attempts (email, created_at);
create index login_attempts_ip_created_at_idx on login_attempts (ip, created_at);
create index login_attempts_created_at_idx on login_attempts (created_at);
