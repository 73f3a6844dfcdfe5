-- Indexes for reads that issue 16 added (measured by benches/dashboard_pages
-- at 100,000 tasks):
-- - the task list filtered by a rare outcome status (reversed, escalated,
--   waiting) reads that status's outcomes, not every task of the account;
-- - the console's health page counts tasks finished since a time and
--   reads the last one, without reading every task.
create index outcomes_account_id_status_task_id_idx on outcomes (account_id, livemode, status, task_id);
create index tasks_finished_at_idx on tasks (finished_at) where finished_at is not null;
