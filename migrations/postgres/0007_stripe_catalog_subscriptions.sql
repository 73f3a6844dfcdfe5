-- Stripe billing, completed: the catalogue `bounty stripe setup` creates
-- (meter, product, prices), a subscription for every account, and how
-- each reversal was undone in Stripe.
--
-- New outbox kinds:
-- - stripe_subscription: the account's subscription on the metered price.
-- - helpdesk_reply: an agent's reply posted back to a helpdesk ticket
--   (the helpdesk integrations write it; listed now so that SQLite's
--   outbox is rebuilt once).

alter table outbox drop constraint outbox_kind_check;
alter table outbox add constraint outbox_kind_check
    check (kind in ('meter_event', 'meter_event_reversal', 'stripe_customer',
                    'stripe_subscription', 'helpdesk_reply'));

-- How the effect was delivered, where there is a choice: a reversal is
-- `cancel` (a meter event adjustment, inside Stripe's 24 h window) or
-- `credit` (a customer balance credit, after it). Reconciliation reads
-- it: a credited charge still counts on Stripe's meter. Reversals sent
-- before this migration could only have been cancellations.
alter table outbox add column sent_as text;
update outbox set sent_as = 'cancel' where kind = 'meter_event_reversal' and status = 'sent';

-- What `bounty stripe setup` created or found in Stripe: `meter`,
-- `product`, and `price:<lookup key>` for each plan price in use.
create table stripe_catalog (
    key         text collate "C" primary key,
    value       text not null,
    updated_at  timestamptz not null
);
