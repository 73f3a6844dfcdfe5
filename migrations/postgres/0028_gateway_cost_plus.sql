-- Gateway calls billed at cost plus the plan's markup (issue 18).
--
-- The billing sweep bills a batch of an account's unbilled cost-plus calls
-- as one `cost_plus` ledger transfer (receivable → revenue, in money) and
-- marks each call with it, in one transaction: a call is billed once, and
-- a crash bills none of the batch. The transfer's meter event goes to
-- Stripe through the outbox on the gateway's own meter.
alter table gateway_calls add column billed_transfer_id text;

-- What the sweep looks for: cost-plus calls with a charge, not billed yet.
create index gateway_calls_unbilled_idx on gateway_calls (account_id, livemode, currency)
    where billing = 'cost_plus' and billed_transfer_id is null and charge_micros > 0;
-- The calls a transfer billed, for its line on the customer's charges.
create index gateway_calls_billed_idx on gateway_calls (billed_transfer_id)
    where billed_transfer_id is not null;

-- A new outbox kind: the gateway's cost-plus price, added to an account's
-- subscription.
alter table outbox drop constraint outbox_kind_check;
alter table outbox add constraint outbox_kind_check
    check (kind in ('meter_event', 'meter_event_reversal', 'stripe_customer',
                    'stripe_subscription', 'stripe_subscription_item', 'helpdesk_reply'));
