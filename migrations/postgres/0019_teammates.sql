-- Teammates (issue 16): the read-only `viewer` role, invites by one-time
-- link, and password resets by one-time link for users and operators.
--
-- Every one-time link carries a random token; only its SHA-256 is kept
-- here (`token_hash`), as for sessions, so a copy of these tables opens
-- nothing. A link is single-use because using it is one conditional
-- update (`... where used_at is null and expires_at > now`): of two
-- concurrent uses, exactly one changes the row.

-- The wider role check. (SQLite rebuilds the table for the same result.)
alter table users drop constraint users_role_check;
alter table users add constraint users_role_check check (role in ('owner', 'member', 'viewer'));

-- An owner's invitation of a teammate. `invited_by` is the inviting
-- user's id without a foreign key: a user can be removed later, and the
-- invite stays what it was. An invite is pending while `accepted_at` and
-- `revoked_at` are null and `expires_at` is ahead; accepting it creates
-- the user in the same transaction that sets `accepted_at`.
create table invites (
    id           text collate "C" primary key,
    account_id   text collate "C" not null
                 constraint invites_account_id_fkey references accounts (id),
    email        text not null
                 constraint invites_email_check check (email = lower(email) and length(email) > 0),
    role         text not null
                 constraint invites_role_check check (role in ('owner', 'member', 'viewer')),
    token_hash   text not null
                 constraint invites_token_hash_key unique,
    invited_by   text collate "C" not null,
    created_at   timestamptz not null,
    expires_at   timestamptz not null,
    accepted_at  timestamptz,
    revoked_at   timestamptz
);

create index invites_account_id_id_idx on invites (account_id, id);

-- A user's password reset link. Using it sets the password and ends the
-- user's sessions in one transaction; removing the user deletes its rows.
create table password_resets (
    token_hash  text primary key,
    account_id  text collate "C" not null
                constraint password_resets_account_id_fkey references accounts (id),
    user_id     text collate "C" not null
                constraint password_resets_user_id_fkey references users (id),
    created_at  timestamptz not null,
    expires_at  timestamptz not null,
    used_at     timestamptz
);

create index password_resets_user_id_idx on password_resets (user_id);

-- The operator's, in its own table: operator rows never mix with an
-- account's (0016).
create table operator_password_resets (
    token_hash   text primary key,
    operator_id  text collate "C" not null
                 constraint operator_password_resets_operator_id_fkey references operators (id),
    created_at   timestamptz not null,
    expires_at   timestamptz not null,
    used_at      timestamptz
);

create index operator_password_resets_operator_id_idx on operator_password_resets (operator_id);

-- Every "forgot your password" request, for the same sliding-window limit
-- as logins (per email and per client address), counted whether or not
-- the email has a user, so the limit tells nothing either. Pruned after a
-- day, as login attempts are. Not tenant data.
create table password_reset_requests (
    id          text collate "C" primary key,
    email       text not null,
    ip          text not null,
    created_at  timestamptz not null
);

create index password_reset_requests_email_created_at_idx on password_reset_requests (email, created_at);
create index password_reset_requests_ip_created_at_idx on password_reset_requests (ip, created_at);
create index password_reset_requests_created_at_idx on password_reset_requests (created_at);
