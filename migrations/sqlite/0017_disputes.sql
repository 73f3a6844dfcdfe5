-- Disputes: a customer contests a charged outcome. One dispute per outcome
-- (a second is refused by `disputes_outcome_id_key`). The evidence pack is
-- fixed when the dispute opens: its JSON and its SHA-256 are stored, and a
-- trigger refuses any later change to either, so both sides can check the
-- file they downloaded against the hash at any time.

create table disputes (
    id               text primary key,
    account_id       text not null
                     constraint disputes_account_id_fkey references accounts (id),
    outcome_id       text not null
                     constraint disputes_outcome_id_fkey references outcomes (id),
    livemode         boolean not null,
    status           text not null
                     constraint disputes_status_check check (status in ('open', 'accepted', 'rejected')),
    reason           text not null,
    comment          text,
    evidence         text not null,
    evidence_sha256  text not null,
    opened_by        text not null,
    decided_by       text,
    decision_reason  text,
    created_at       text not null,
    decided_at       text,
    constraint disputes_outcome_id_key unique (outcome_id)
);

create index disputes_account_id_livemode_id_idx on disputes (account_id, livemode, id);
create index disputes_status_id_idx on disputes (status, id);
create index disputes_account_id_status_decided_at_idx on disputes (account_id, status, decided_at);

create trigger disputes_evidence_immutable
    before update of evidence, evidence_sha256 on disputes
    when new.evidence is not old.evidence or new.evidence_sha256 is not old.evidence_sha256
begin
    select raise(abort, 'a dispute''s evidence pack never changes');
end;
