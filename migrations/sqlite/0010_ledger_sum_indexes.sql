-- Covering indexes for the ledger sums every charge and the billing page
-- compute: an account's balance in one ledger account (credits minus
-- debits, summed separately so each side uses its index), and the net of
-- one kind of transfer since the start of the month. Without them each sum
-- read every transfer of the account: at 100,000 tasks finishing a task
-- took about 100 ms, almost all of it in these two scans.

create index ledger_transfers_credit_sum_idx on ledger_transfers (account_id, credit, unit, amount);
create index ledger_transfers_debit_sum_idx on ledger_transfers (account_id, debit, unit, amount);
create index ledger_transfers_kind_created_idx on ledger_transfers (account_id, kind, created_at, amount);
