//! `bounty stripe setup` and `bounty billing reconcile`: the operator's
//! side of Stripe billing.

use anyhow::{Context, bail};
use bounty_billing::catalog::setup;
use bounty_billing::reconcile::reconcile as compare;
use bounty_billing::stripe::StripeClient;
use bounty_core::plan::Plan;
use bounty_store::Store;
use chrono::NaiveDate;

use crate::cli::StripeCommand;
use crate::config::Config;

fn client(config: &Config) -> anyhow::Result<StripeClient> {
    match config.stripe.client()? {
        Some(client) => Ok(client),
        None => bail!(
            "Stripe is not configured: set stripe.secret_key (BOUNTY_STRIPE__SECRET_KEY=sk_test_…) and run again"
        ),
    }
}

pub async fn run(cmd: StripeCommand, config: &Config, store: &Store) -> anyhow::Result<()> {
    match cmd {
        StripeCommand::Setup { json } => {
            let client = client(config)?;
            let default_price = Plan::default_value_plan().price_per_cu;
            let report = setup(&client, store, &default_price)
                .await
                .context("Stripe setup stopped")?;
            if json {
                let step = |s: &bounty_billing::catalog::Step| {
                    serde_json::json!({
                        "id": s.id(),
                        "created": matches!(s, bounty_billing::catalog::Step::Created(_)),
                    })
                };
                let out = serde_json::json!({
                    "meter": step(&report.meter),
                    "product": step(&report.product),
                    "price": step(&report.price),
                    "lookup_key": report.lookup_key,
                    "gateway_meter": step(&report.gateway_meter),
                    "gateway_product": step(&report.gateway_product),
                    "gateway_price": step(&report.gateway_price),
                    "gateway_lookup_key": report.gateway_lookup_key,
                    "subscriptions_queued": report.subscriptions_queued,
                    "items_queued": report.items_queued,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("{report}");
            }
            Ok(())
        }
    }
}

pub async fn reconcile(
    config: &Config,
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    all: bool,
    json: bool,
) -> anyhow::Result<()> {
    if from >= to {
        bail!("--from {from} must be before --to {to} (--to is excluded)");
    }
    let client = client(config)?;
    let report = compare(&client, store, from, to)
        .await
        .context("reconciliation stopped")?;
    let shown: Vec<_> = report
        .days
        .iter()
        .filter(|d| all || d.difference() != 0)
        .collect();
    let differing = report.differences().count();
    if json {
        let rows: Vec<_> = shown
            .iter()
            .map(|d| {
                serde_json::json!({
                    "account_id": d.account_id.to_string(),
                    "stripe_customer_id": d.stripe_customer_id,
                    "day": d.day.to_string(),
                    "ledger_milli_cu": d.ledger_milli,
                    "stripe_milli_cu": d.stripe_milli,
                    "difference_milli_cu": d.difference(),
                    "credited_milli_cu": d.credited_milli,
                    "in_flight": d.in_flight,
                })
            })
            .collect();
        let out = serde_json::json!({
            "from": from.to_string(),
            "to": to.to_string(),
            "days_compared": report.days.len(),
            "differences": differing,
            "days": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if !shown.is_empty() {
            println!(
                "{:<32} {:<10} {:>14} {:>14} {:>14} {:>9}",
                "account", "day", "ledger mCU", "stripe mCU", "difference", "in flight"
            );
        }
        for d in &shown {
            println!(
                "{:<32} {:<10} {:>14} {:>14} {:>14} {:>9}",
                d.account_id.to_string(),
                d.day.to_string(),
                d.ledger_milli,
                d.stripe_milli,
                d.difference(),
                d.in_flight
            );
        }
        println!(
            "{} account-day(s) compared from {from} to {to} (UTC, --to excluded): {differing} differ",
            report.days.len()
        );
    }
    if differing > 0 {
        bail!("{differing} account-day(s) differ between the ledger and Stripe");
    }
    Ok(())
}
