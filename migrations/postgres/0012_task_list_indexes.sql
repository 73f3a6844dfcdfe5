-- The task list's filters and search at 100,000 tasks an account.
--
-- A status or agent filter walks these instead of every task of the
-- account, and the cursor seeks within them.
create index tasks_account_id_status_id_idx on tasks (account_id, status, id);
create index tasks_account_id_agent_id_id_idx on tasks (account_id, agent_id, id);

-- Search is `lower(input) like '%term%'`. A trigram index serves it: a term
-- found in one task of 100,000 went from about 120 ms (a scan of every
-- input) to under 1 ms, and with a right estimate a common term walks the
-- newest tasks instead of sorting all matches. pg_trgm ships with
-- PostgreSQL (contrib) and is a trusted extension, so the database owner
-- may create it. Where it is missing or may not be created, search still
-- works, as a scan: the migration notes that and goes on.
do $$
begin
    create extension if not exists pg_trgm;
exception when others then
    raise notice 'pg_trgm is not available (%); task search will scan', sqlerrm;
end
$$;

do $$
begin
    if exists (select 1 from pg_extension where extname = 'pg_trgm') then
        create index tasks_input_trgm_idx on tasks using gin (lower(input) gin_trgm_ops);
    end if;
end
$$;
