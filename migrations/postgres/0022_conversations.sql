-- Conversations (issue 17): a task is a conversation of turns. The
-- ticket's input is its first customer message and is not copied here;
-- every later customer message and every turn's answer is a row of
-- `task_messages`, numbered by `seq` within its task (the order rows were
-- written).
--
-- `turn` is the turn that reads (customer) or wrote (agent) the message.
-- A customer message that arrives while a turn runs belongs to the next
-- turn: the running one may not have read it, so its finish sees a message
-- of a later turn and queues that turn instead of settling. The
-- conversation is read in `(turn, seq)` order, which puts such a message
-- after the answer of the turn it raced.
--
-- `idempotency_key` and `request_hash` make `POST /v1/tasks/{id}/messages`
-- safe to retry: a key appends at most one message to its task.
--
-- `tasks.turn` is the turn the task is on (1 for a new task).
-- `tasks.attempts_per_turn` keeps the attempts each turn gets once a task
-- has a second turn (null until then: `max_attempts` is the first turn's);
-- `attempts` keeps counting across turns, so attempt numbers stay unique,
-- and each new turn raises `max_attempts` by this many.

create table task_messages (
    account_id      text collate "C" not null
                    constraint task_messages_account_id_fkey references accounts (id),
    task_id         text collate "C" not null
                    constraint task_messages_task_id_fkey references tasks (id),
    seq             integer not null,
    turn            integer not null,
    role            text not null
                    constraint task_messages_role_check check (role in ('customer', 'agent')),
    body            text not null,
    source          text not null
                    constraint task_messages_source_check check (source in ('api', 'helpdesk', 'agent')),
    idempotency_key text,
    request_hash    text,
    created_at      timestamptz not null,
    constraint task_messages_pkey primary key (task_id, seq),
    constraint task_messages_task_id_idempotency_key_key unique (task_id, idempotency_key)
);

create index task_messages_account_id_task_id_turn_idx on task_messages (account_id, task_id, turn, seq);

alter table tasks add column turn integer not null default 1;
alter table tasks add column attempts_per_turn integer;
