//! `bounty distill status` and `bounty distill promote`: the shadow
//! student measured against its teacher, and its promotion.
//!
//! The worker runs an agent's shadow student (`routing.shadow`) beside a
//! share of live tasks and records its verdicts as `shadow` pass rates;
//! the route's models have `live` ones. The teacher is the route's last
//! model, the one a cascade ends on. Promotion is a new agent version,
//! like any edit: the student first in the route, a cascade so a rejected
//! student answer still reaches the teacher, and no more shadow runs.

use anyhow::bail;
use bounty_core::routing::{percent, promoted_route, promotion_check};
use bounty_core::{Cascade, ModelRoute, PassRate, RoutingPolicy};
use bounty_store::{Agent, AgentPatch, ModelRates, Store};
use serde::Serialize;

use super::BadInput;
use crate::cli::{DistillAgentArgs, DistillPromoteArgs};

/// One model's line of the comparison.
#[derive(Debug, Serialize)]
struct ModelLine {
    model: String,
    /// `teacher`, `route` (another model of the route) or `student`.
    role: &'static str,
    tried: u64,
    passed: u64,
    /// Basis points; absent before any verdict.
    pass_rate_bp: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Status {
    agent_id: String,
    agent: String,
    version: i32,
    route: Vec<String>,
    student: Option<String>,
    /// Basis points of live tasks the student shadows.
    shadow_share_bp: Option<u32>,
    models: Vec<ModelLine>,
}

async fn agent_of(args: &DistillAgentArgs, store: &Store) -> anyhow::Result<Agent> {
    if store.get_account(args.account).await?.is_none() {
        return Err(BadInput(format!("no account {} (--account)", args.account)).into());
    }
    match store.find_agent_by_name(args.account, &args.agent).await? {
        Some(agent) => Ok(agent),
        None => Err(BadInput(format!(
            "account {} has no agent named {:?} (--agent)",
            args.account, args.agent
        ))
        .into()),
    }
}

fn status_of(agent: &Agent, rates: &std::collections::BTreeMap<String, ModelRates>) -> Status {
    let rate = |m: &str, shadow: bool| {
        let r = rates.get(m).copied().unwrap_or_default();
        if shadow { r.shadow } else { r.live }
    };
    let line = |model: &str, role, r: PassRate| ModelLine {
        model: model.to_owned(),
        role,
        tried: r.tried,
        passed: r.passed,
        pass_rate_bp: r.bp(),
    };
    let teacher = agent.model_route.last().cloned().unwrap_or_default();
    let mut models: Vec<ModelLine> = agent
        .model_route
        .iter()
        .map(|m| {
            let role = if *m == teacher { "teacher" } else { "route" };
            line(m, role, rate(m, false))
        })
        .collect();
    let student = agent.routing.shadow.as_ref().map(|s| s.model.clone());
    if let Some(s) = &student {
        models.push(line(s, "student", rate(s, true)));
    }
    Status {
        agent_id: agent.id.to_string(),
        agent: agent.name.clone(),
        version: agent.version,
        route: agent.model_route.clone(),
        student,
        shadow_share_bp: agent.routing.shadow.as_ref().map(|s| s.share_bp),
        models,
    }
}

pub async fn status(args: DistillAgentArgs, store: &Store) -> anyhow::Result<()> {
    let agent = agent_of(&args, store).await?;
    let rates = store.model_pass_rates(args.account, agent.id).await?;
    let status = status_of(&agent, &rates);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!(
        "agent {} ({}), version {}; route {}",
        status.agent,
        status.agent_id,
        status.version,
        status.route.join(" → ")
    );
    match (&status.student, status.shadow_share_bp) {
        (Some(s), Some(share)) => println!("shadow student {s} on {} of live tasks", percent(share)),
        _ => println!("no shadow student (set routing.shadow on the agent)"),
    }
    println!(
        "{:<24} {:<8} {:>8} {:>8} {:>10}",
        "MODEL", "ROLE", "VERDICTS", "PASSED", "PASS RATE"
    );
    for m in &status.models {
        println!(
            "{:<24} {:<8} {:>8} {:>8} {:>10}",
            m.model,
            m.role,
            m.tried,
            m.passed,
            m.pass_rate_bp.map(percent).unwrap_or_else(|| "—".to_owned())
        );
    }
    Ok(())
}

pub async fn promote(args: DistillPromoteArgs, store: &Store) -> anyhow::Result<()> {
    let agent = agent_of(&args.agent, store).await?;
    let Some(shadow) = agent.routing.shadow.clone() else {
        bail!(
            "agent {} has no shadow student to promote (routing.shadow)",
            agent.name
        );
    };
    let rates = store.model_pass_rates(args.agent.account, agent.id).await?;
    let teacher = agent.model_route.last().cloned().unwrap_or_default();
    let student_rate = rates.get(&shadow.model).map(|r| r.shadow).unwrap_or_default();
    let teacher_rate = rates.get(&teacher).map(|r| r.live).unwrap_or_default();
    if let Err(why) = promotion_check(student_rate, teacher_rate, args.margin_bp, args.min_samples) {
        bail!("not promoted: {why}");
    }
    let route = promoted_route(&agent.model_route, &shadow.model);
    let route = ModelRoute::parse(route).map_err(|e| anyhow::anyhow!("the promoted route {e}"))?;
    let routing = RoutingPolicy {
        cascade: Some(agent.routing.cascade.clone().unwrap_or(Cascade {
            max_steps: None,
            min_confidence: None,
            pass_rate_floor_bp: None,
            min_samples: 20,
        })),
        cache: agent.routing.cache.clone(),
        shadow: None,
    };
    let patch = AgentPatch {
        model_route: Some(route),
        routing: Some(routing),
        ..Default::default()
    };
    let Some(updated) = store.update_agent(args.agent.account, agent.id, &patch).await? else {
        bail!("agent {} vanished while being promoted", agent.name);
    };
    if args.agent.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "agent_id": updated.id.to_string(),
                "version": updated.version,
                "route": updated.model_route,
                "student_pass_rate_bp": student_rate.bp(),
                "teacher_pass_rate_bp": teacher_rate.bp(),
            }))?
        );
    } else {
        println!(
            "promoted {} (student {} vs teacher {}): agent {} version {} routes {}",
            shadow.model,
            student_rate.bp().map(percent).unwrap_or_default(),
            teacher_rate.bp().map(percent).unwrap_or_default(),
            updated.name,
            updated.version,
            updated.model_route.join(" → ")
        );
    }
    Ok(())
}
