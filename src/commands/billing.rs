//! `bounty usage`, `bounty credits`, `bounty billing`: operator views and
//! settings of an account's charges, credits, plan and cap.

use anyhow::{Context, bail};
use bounty_core::plan::Plan;
use bounty_core::{AccountId, ComputeUnits, Money};
use bounty_server::routes::billing::UsageGroup;
use bounty_server::routes::ops::{OperatorFigures, inference_costs};
use bounty_store::Store;

use crate::cli::{BillingCommand, CreditsCommand, UsageArgs};
use crate::config::Config;

fn time(flag: &str, v: Option<&str>) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    v.map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&chrono::Utc))
            .with_context(|| format!("--{flag} {s:?} is not an RFC 3339 time (2026-11-01T00:00:00Z)"))
    })
    .transpose()
}

pub(crate) async fn require_account(store: &Store, account: AccountId) -> anyhow::Result<()> {
    if store.get_account(account).await?.is_none() {
        bail!("no account {account}");
    }
    Ok(())
}

pub async fn usage(args: UsageArgs, store: &Store) -> anyhow::Result<()> {
    require_account(store, args.account).await?;
    if args.group_by != "day" && args.group_by != "agent" {
        bail!("--group-by must be `day` or `agent`");
    }
    let now = store.now();
    let from = time("from", args.from.as_deref())?.unwrap_or_else(|| bounty_store::period_start(now));
    let to = time("to", args.to.as_deref())?.unwrap_or(now);
    let buckets = store
        .usage(args.account, bounty_core::ApiKeyMode::Live, from, to)
        .await?;
    // The operator's view adds what the customer's never shows: the
    // inference cost of each group's decided outcomes, and the margin.
    let mut costs = inference_costs(&buckets, &args.group_by);
    let report = bounty_server::routes::billing::aggregate(buckets, &args.group_by, from, to);
    let mut figures = |g: UsageGroup| {
        let cost = costs.remove(&g.key).unwrap_or_default();
        OperatorFigures::new(g, cost)
    };
    let groups: Vec<OperatorFigures> = report.groups.into_iter().map(&mut figures).collect();
    let total = figures(report.total);
    if args.json {
        let json = serde_json::json!({
            "from": report.from, "to": report.to, "group_by": report.group_by,
            "groups": groups, "total": total,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!(
        "usage of {} from {} to {}, by {}",
        args.account, report.from, report.to, report.group_by
    );
    println!(
        "{:<28} {:>8} {:>7} {:>8} {:>6} {:>12} {:>16} {:>16} {:>8}",
        "KEY", "RESOLVED", "FAILED", "REVERSED", "RATE%", "CU", "CHARGES", "INFERENCE", "MARGIN%"
    );
    let money = |m: &std::collections::BTreeMap<String, i64>| {
        m.iter()
            .map(|(c, v)| format!("{} {c}", micros(*v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for f in groups.iter().chain(std::iter::once(&total)) {
        let g = &f.usage;
        let margin = f
            .gross_margin_pct
            .values()
            .next()
            .map(|p| format!("{p:.1}"))
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<28} {:>8} {:>7} {:>8} {:>6.1} {:>12} {:>16} {:>16} {:>8}",
            g.key,
            g.outcomes_resolved,
            g.outcomes_failed,
            g.outcomes_reversed,
            g.resolution_rate_pct,
            g.cu,
            money(&g.charges_micros),
            money(&f.inference_cost_micros),
            margin
        );
    }
    Ok(())
}

fn micros(v: i64) -> String {
    Money::from_micros(v, bounty_core::Currency::USD)
        .to_string()
        .trim_end_matches(" USD")
        .to_owned()
}

pub async fn credits(cmd: CreditsCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        CreditsCommand::Grant { account, cu, memo } => {
            require_account(store, account).await?;
            let amount = ComputeUnits::parse_decimal(cu.trim())
                .map_err(|e| anyhow::anyhow!("{cu:?} is not a CU amount: {e}"))?;
            if amount.milli() <= 0 {
                bail!("the grant must be positive");
            }
            let id = store
                .grant_credits(account, bounty_core::ApiKeyMode::Live, amount, memo)
                .await?;
            let info = store.billing_info(account, bounty_core::ApiKeyMode::Live).await?;
            println!(
                "granted {amount} CU to {account} ({id}); balance {} CU",
                info.credit_balance
            );
            Ok(())
        }
        CreditsCommand::Show { account } => {
            require_account(store, account).await?;
            let info = store.billing_info(account, bounty_core::ApiKeyMode::Live).await?;
            println!("balance {} CU", info.credit_balance);
            for t in store
                .transfers(
                    account,
                    None,
                    Some(bounty_core::ledger::TransferKind::CreditGrant),
                )
                .await?
                .iter()
                .rev()
            {
                println!(
                    "{}  {}  {} CU  {}",
                    t.id,
                    t.created_at.format("%Y-%m-%d %H:%M"),
                    ComputeUnits::from_milli(t.amount),
                    t.memo.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
    }
}

pub async fn billing(cmd: BillingCommand, config: &Config, store: &Store) -> anyhow::Result<()> {
    match cmd {
        BillingCommand::Reconcile { from, to, all, json } => {
            super::stripe::reconcile(config, store, from, to, all, json).await
        }
        BillingCommand::Show { account } => {
            require_account(store, account).await?;
            let info = store.billing_info(account, bounty_core::ApiKeyMode::Live).await?;
            println!("plan: {}", serde_json::to_string(&info.plan)?);
            match info.monthly_cap {
                Some(cap) => println!("monthly cap: {cap} (alerts at {:?}%)", info.alert_percents),
                None => println!("monthly cap: none"),
            }
            println!("credit balance: {} CU", info.credit_balance);
            println!(
                "this month: {} charged or reserved ({} reserved)",
                info.month_spend, info.reserved
            );
            Ok(())
        }
        BillingCommand::SetPlan { account, file } => {
            require_account(store, account).await?;
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let plan: Plan =
                serde_json::from_str(&text).with_context(|| format!("{} is not a plan", file.display()))?;
            if let Err((field, message)) = plan.validate() {
                bail!("plan field `{field}` {message}");
            }
            store.set_plan(account, &plan).await?;
            println!(
                "plan of {account} set to {:?} ({})",
                plan.name,
                plan.kind.as_str()
            );
            Ok(())
        }
        BillingCommand::SetCap {
            account,
            monthly,
            none,
            alerts,
        } => {
            require_account(store, account).await?;
            let info = store.billing_info(account, bounty_core::ApiKeyMode::Live).await?;
            let cap = match (monthly, none) {
                (Some(m), false) => Some(
                    Money::parse_decimal(m.trim(), info.plan.currency())
                        .map_err(|e| anyhow::anyhow!("--monthly {m:?}: {e}"))?,
                ),
                (None, true) => None,
                _ => bail!("give --monthly AMOUNT or --none"),
            };
            if cap.is_some_and(|c| c.micros <= 0) {
                bail!("--monthly must be positive");
            }
            if alerts.iter().any(|p| *p == 0 || *p > 100) {
                bail!("--alerts are percents between 1 and 100");
            }
            store.set_cap(account, cap.map(|c| c.micros), &alerts).await?;
            match cap {
                Some(c) => println!("monthly cap of {account} set to {c}"),
                None => println!("monthly cap of {account} removed"),
            }
            Ok(())
        }
    }
}
