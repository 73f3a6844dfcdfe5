-- The task list's filters and search at 100,000 tasks an account.
--
-- A status or agent filter walks these instead of every task of the
-- account, and the cursor seeks within them: a rare status went from
-- 60-190 ms to well under 1 ms.
create index tasks_account_id_status_id_idx on tasks (account_id, status, id);
create index tasks_account_id_agent_id_id_idx on tasks (account_id, agent_id, id);

-- Search: an FTS5 trigram index over the task's input (external content:
-- the text stays in `tasks` only), kept by triggers. A term found in one
-- task of 100,000 took 110-270 ms as a scan. The list narrows with it and
-- still applies its own `like`, so a stale entry can only ever hide a
-- task, never show a wrong one; `insert into tasks_search(tasks_search)
-- values ('rebuild')` rebuilds it (after a VACUUM, which may renumber the
-- rowids it refers to).
create virtual table tasks_search using fts5(
    input,
    content = 'tasks',
    content_rowid = 'rowid',
    tokenize = 'trigram'
);
insert into tasks_search (tasks_search) values ('rebuild');

create trigger tasks_search_insert after insert on tasks begin
    insert into tasks_search (rowid, input) values (new.rowid, new.input);
end;
create trigger tasks_search_delete after delete on tasks begin
    insert into tasks_search (tasks_search, rowid, input) values ('delete', old.rowid, old.input);
end;
create trigger tasks_search_update after update of input on tasks begin
    insert into tasks_search (tasks_search, rowid, input) values ('delete', old.rowid, old.input);
    insert into tasks_search (rowid, input) values (new.rowid, new.input);
end;
