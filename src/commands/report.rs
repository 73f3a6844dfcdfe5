//! `bounty report margins`: the pricing-model comparison from recorded
//! history (see `bounty_core::margin` for the arithmetic and
//! `Store::margin_figures` for where each input comes from).

use bounty_core::margin::{Comparison, PricingLine, compare};
use bounty_core::routing::percent;
use bounty_core::{Currency, Money};
use bounty_store::{MarginFigures, Store};

use super::BadInput;
use crate::cli::{ReportCommand, ReportMarginsArgs};

pub async fn run(cmd: ReportCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        ReportCommand::Margins(args) => margins(args, store).await,
    }
}

async fn margins(args: ReportMarginsArgs, store: &Store) -> anyhow::Result<()> {
    if store.get_account(args.account).await?.is_none() {
        return Err(BadInput(format!("no account {} (--account)", args.account)).into());
    }
    let agent = match &args.agent {
        None => None,
        Some(name) => match store.find_agent_by_name(args.account, name).await? {
            Some(a) => Some(a.id),
            None => {
                return Err(BadInput(format!(
                    "account {} has no agent named {name:?} (--agent)",
                    args.account
                ))
                .into());
            }
        },
    };
    let now = store.now();
    let from = args.from.unwrap_or_else(|| bounty_store::period_start(now));
    let to = args.to.unwrap_or(now);
    if from >= to {
        return Err(BadInput("--from must be before --to".to_owned()).into());
    }
    let plan = store.plan(args.account).await?;
    let currency: Currency = plan.currency();
    let fee = match &args.platform_fee {
        Some(raw) => Money::parse_decimal(raw, currency)
            .map_err(|e| BadInput(format!("--platform-fee {raw:?}: {e}")))?,
        None => bounty_core::margin::platform_fee(&plan),
    };
    if fee.micros < 0 {
        return Err(BadInput("--platform-fee must not be negative".to_owned()).into());
    }
    let figures = store
        .margin_figures(args.account, agent, from, to, currency.as_str())
        .await?;
    let comparison = compare(&figures.inputs, args.markup_bp, fee.micros);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "account_id": args.account.to_string(),
                "agent": args.agent,
                "from": from,
                "to": to,
                "currency": currency.as_str(),
                "markup_bp": args.markup_bp,
                "platform_fee_micros": fee.micros,
                "inputs": figures.inputs,
                "shadow_cost_micros": figures.shadow_cost_micros,
                "cache_saved_micros": figures.cache_saved_micros,
                "frontier": figures.frontier.iter().map(|(agent, model, avg)| serde_json::json!({
                    "agent_id": agent.to_string(),
                    "model": model,
                    "average_call_micros": avg,
                })).collect::<Vec<_>>(),
                "comparison": comparison,
            }))?
        );
        return Ok(());
    }
    print!("{}", table(&args, from, to, currency, &figures, &comparison));
    Ok(())
}

fn money(micros: i64, currency: Currency) -> String {
    Money::from_micros(micros, currency).to_string()
}

fn table(
    args: &ReportMarginsArgs,
    from: bounty_core::Timestamp,
    to: bounty_core::Timestamp,
    currency: Currency,
    f: &MarginFigures,
    c: &Comparison,
) -> String {
    let mut out = String::new();
    let scope = args
        .agent
        .as_deref()
        .map_or("every agent".to_owned(), |a| format!("agent {a}"));
    out.push_str(&format!(
        "margins of {} ({scope}) from {from} to {to}: {} decided, {} resolved\n\n",
        args.account, f.inputs.decided, f.inputs.resolved
    ));
    out.push_str(&format!(
        "{:<32} {:>18} {:>18} {:>18} {:>8}\n",
        "PRICING MODEL", "REVENUE", "OUR COST", "GROSS MARGIN", "MARGIN"
    ));
    let line = |name: &str, l: &PricingLine| {
        format!(
            "{:<32} {:>18} {:>18} {:>18} {:>8}\n",
            name,
            money(l.revenue_micros, currency),
            money(l.cost_micros, currency),
            money(l.margin_micros, currency),
            l.margin_bp
                .and_then(|bp| u32::try_from(bp).ok())
                .map(percent)
                .unwrap_or_else(|| "—".to_owned())
        )
    };
    out.push_str(&line(
        &format!("cost-plus ({} markup)", percent(args.markup_bp)),
        &c.cost_plus,
    ));
    out.push_str(&line("value-based (the plan)", &c.value_based));
    out.push_str(&line(
        &format!(
            "BYOK ({} per outcome)",
            money(
                c.byok.revenue_micros.checked_div(f.inputs.resolved).unwrap_or(0),
                currency
            )
        ),
        &c.byok,
    ));
    out.push_str(&format!(
        "\nraw inference cost (every task on the frontier)  {}\n\
         cost-plus price of the raw cost                  {}\n\
         delivered cost (routing, cache, distillation)    {}\n\
         of which shadow students                         {}\n\
         saved by the verified-answer cache               {}\n",
        money(c.raw_cost_micros, currency),
        money(c.cost_plus_price_micros, currency),
        money(c.delivered_cost_micros, currency),
        money(f.shadow_cost_micros, currency),
        money(f.cache_saved_micros, currency),
    ));
    for (agent, model, avg) in &f.frontier {
        out.push_str(&format!(
            "  raw estimate for {agent}: frontier {model}, {}\n",
            avg.map_or(
                "no answering call recorded: its delivered cost is used".to_owned(),
                |a| { format!("{} per answering call", money(a, currency)) }
            )
        ));
    }
    out
}
