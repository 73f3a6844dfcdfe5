//! Reconciliation: the ledger's metered CU per account and UTC day against Stripe's meter event
//! summaries for the same customer and day.
//!
//! The ledger side counts every `charge` transfer of the day, less those whose meter event was
//! cancelled in Stripe (a reversal inside 24 h). A charge reversed later by a balance credit
//! still counts: its usage stays on Stripe's meter and the credit comes off the invoice. Outbox
//! rows not yet sent are reported as `in flight`, so a difference while the outbox drains is told
//! apart from a real one. Stripe aggregates meter events asynchronously, so the last few minutes
//! may differ until it catches up; run it over closed days.

use std::collections::BTreeMap;

use bounty_core::AccountId;
use bounty_store::Store;
use chrono::{NaiveDate, TimeZone, Utc};

use crate::catalog::{CatalogError, METER_KEY};
use crate::stripe::StripeClient;

/// One account and day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayComparison {
    pub account_id: AccountId,
    pub stripe_customer_id: Option<String>,
    pub day: NaiveDate,
    /// Milli-CU the ledger says Stripe's meter should hold.
    pub ledger_milli: i64,
    /// Milli-CU Stripe's meter holds.
    pub stripe_milli: i64,
    /// Milli-CU reversed by balance credits (informational).
    pub credited_milli: i64,
    /// Outbox rows of this day's charges still unsent.
    pub in_flight: i64,
}

impl DayComparison {
    /// Ledger minus Stripe.
    pub fn difference(&self) -> i64 {
        self.ledger_milli - self.stripe_milli
    }
}

/// What [`reconcile`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Every account and day with usage on either side, in order.
    pub days: Vec<DayComparison>,
}

impl ReconcileReport {
    /// The days that differ.
    pub fn differences(&self) -> impl Iterator<Item = &DayComparison> {
        self.days.iter().filter(|d| d.difference() != 0)
    }
}

/// Compares `[from, to)` (UTC days).
pub async fn reconcile(
    client: &StripeClient,
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<ReconcileReport, CatalogError> {
    let meter = store
        .catalog_get(METER_KEY)
        .await?
        .ok_or(CatalogError::NotSetUp("meter"))?;
    let start = Utc.from_utc_datetime(&from.and_hms_opt(0, 0, 0).unwrap_or_default());
    let end = Utc.from_utc_datetime(&to.and_hms_opt(0, 0, 0).unwrap_or_default());
    let mut days: BTreeMap<(AccountId, NaiveDate), DayComparison> = BTreeMap::new();
    for d in store.admin_ledger_metered_days(start, end).await? {
        days.insert(
            (d.account_id, d.day),
            DayComparison {
                account_id: d.account_id,
                stripe_customer_id: d.stripe_customer_id,
                day: d.day,
                ledger_milli: d.metered_milli,
                stripe_milli: 0,
                credited_milli: d.credited_milli,
                in_flight: d.in_flight,
            },
        );
    }
    if start < end {
        for (account, customer) in store.admin_stripe_customers().await? {
            let values = client
                .meter_daily_values(&meter, &customer, start.timestamp(), end.timestamp())
                .await?;
            for (day_start, value) in values {
                let Some(day) = Utc.timestamp_opt(day_start, 0).single().map(|t| t.date_naive()) else {
                    continue;
                };
                // Milli-CU are integers; Stripe reports the sum as a JSON number.
                let milli = value.round() as i64;
                if milli == 0 {
                    continue;
                }
                days.entry((account, day))
                    .or_insert_with(|| DayComparison {
                        account_id: account,
                        stripe_customer_id: Some(customer.clone()),
                        day,
                        ledger_milli: 0,
                        stripe_milli: 0,
                        credited_milli: 0,
                        in_flight: 0,
                    })
                    .stripe_milli += milli;
            }
        }
    }
    Ok(ReconcileReport {
        days: days.into_values().collect(),
    })
}
