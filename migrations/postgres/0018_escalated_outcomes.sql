-- An outcome may end `escalated`: the ticket went to a person, so the
-- agent did not resolve it. It is never charged, and the usage rollup
-- counts it apart from `failed`.
alter table outcomes drop constraint outcomes_status_check;
alter table outcomes add constraint outcomes_status_check
    check (status in ('verifying', 'provisional', 'resolved', 'failed', 'reversed', 'escalated'));

alter table usage_days drop constraint usage_days_status_check;
alter table usage_days add constraint usage_days_status_check
    check (status in ('resolved', 'failed', 'reversed', 'escalated'));
