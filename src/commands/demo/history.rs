//! A month of the demo's history, written through the ordinary paths at
//! past times: every day some tickets are resolved and charged, some fail
//! verification (never charged), a few are handed to a person (escalated,
//! never charged), a few are reversed by the operator, and a few are
//! disputed (one accepted, one rejected, one waiting in the
//! operator's queue). So the overview's charts, the usage page, the
//! console and the dispute queue show something true from the first
//! minute.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bounty_billing::disputes::{Decision as DisputeDecision, DisputeRequest, decide_dispute, open_dispute};
use bounty_core::dispute::DisputeReason;
use bounty_core::{
    AccountId, Actor, AgentId, ApiKeyMode, Decision, ManualClock, OutcomeId, TaskInput, Timestamp,
};
use bounty_store::{AttemptEnd, NewModelCall, NewTask, Store, TaskOutput};

/// Days of history, ending yesterday.
pub const DAYS: i64 = 30;

/// What happens to one ticket of the history.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Resolved,
    Failed,
    Reversed,
    DisputedAccepted,
    DisputedRejected,
    DisputedOpen,
    /// Waiting on the helpdesk, which hands it to a person.
    Escalated,
}

/// The fate of ticket `n` of `day`: mostly resolved, about one in six
/// failed, a few escalated, reversed and disputed, on different days.
fn fate(day: i64, n: i64) -> Fate {
    match (day, n) {
        (d, 0) if d % 9 == 4 => Fate::Reversed,
        (27, 1) => Fate::DisputedAccepted,
        (20, 1) => Fate::DisputedRejected,
        (28, 2) => Fate::DisputedOpen,
        (d, 2) if d % 5 == 1 => Fate::Escalated,
        (d, n) if (d + n) % 6 == 0 => Fate::Failed,
        _ => Fate::Resolved,
    }
}

const SUBJECTS: [&str; 6] = [
    "Refund still pending after a week",
    "Update the billing email",
    "The app logs me out",
    "Invoice shows the wrong VAT number",
    "Pause my plan for a month",
    "Package arrived damaged",
];

/// Writes `DAYS` days of history for `agent` of `account`, ending the day
/// before `today`; `tickets_per_day` grows a little over the month.
pub async fn seed(
    store: &Store,
    account: AccountId,
    agent: AgentId,
    today: Timestamp,
    tickets_per_day: i64,
    customer: &Actor,
) -> anyhow::Result<()> {
    let clock = Arc::new(ManualClock::new(today));
    let past = store.with_clock(clock.clone());
    let user = Actor::operator("demo").context("the demo operator's name")?;
    for day in 0..DAYS {
        let date = today - chrono::Duration::days(DAYS - day);
        for n in 0..(tickets_per_day + day / 10) {
            let at = date + chrono::Duration::minutes(37 * n + 9 * 60);
            clock.set(at);
            let fate = fate(day, n);
            let subject = SUBJECTS[((day + n) % 6) as usize];
            let decision = match fate {
                Fate::Failed => Decision::Fail,
                Fate::Escalated => Decision::Pending,
                _ => Decision::Pass,
            };
            let outcome = ticket(&past, account, agent, subject, decision).await?;
            let Some(outcome) = outcome else { continue };
            clock.set(at + chrono::Duration::hours(2));
            match fate {
                Fate::Reversed => {
                    bounty_billing::settle::goodwill_reversal(
                        &past,
                        account,
                        outcome,
                        user.clone(),
                        "the customer asked for a refund of a late answer",
                    )
                    .await
                    .context("the demo's reversal")?;
                }
                Fate::DisputedAccepted | Fate::DisputedRejected | Fate::DisputedOpen => {
                    let request = DisputeRequest {
                        reason: if fate == Fate::DisputedRejected {
                            DisputeReason::WrongAnswer
                        } else {
                            DisputeReason::NotResolved
                        },
                        comment: Some("The customer wrote back that nothing changed."),
                        actor: customer.clone(),
                    };
                    let dispute = open_dispute(&past, account, outcome, &request)
                        .await
                        .context("the demo's dispute")?;
                    clock.set(at + chrono::Duration::hours(20));
                    match fate {
                        Fate::DisputedAccepted => {
                            decide_dispute(&past, account, dispute.id, DisputeDecision::Accept, &user, None)
                                .await
                                .context("the demo's accepted dispute")?;
                        }
                        Fate::DisputedRejected => {
                            decide_dispute(
                                &past,
                                account,
                                dispute.id,
                                DisputeDecision::Reject,
                                &user,
                                Some("The transcript shows the refund was issued; the charge stands."),
                            )
                            .await
                            .context("the demo's rejected dispute")?;
                        }
                        _ => {}
                    }
                }
                Fate::Escalated => {
                    bounty_billing::settle::apply_signal(
                        &past,
                        account,
                        outcome,
                        bounty_core::Signal::Escalated,
                        customer.clone(),
                    )
                    .await
                    .context("the demo's hand-off")?;
                }
                Fate::Resolved | Fate::Failed => {}
            }
        }
    }
    Ok(())
}

/// One ticket, worked and verified at the clock's time: its outcome, when
/// one was made.
async fn ticket(
    past: &Store,
    account: AccountId,
    agent: AgentId,
    subject: &str,
    decision: Decision,
) -> anyhow::Result<Option<OutcomeId>> {
    let pass = decision != Decision::Fail;
    let new = NewTask {
        agent_id: agent,
        agent_version: 1,
        input: TaskInput {
            subject: subject.to_owned(),
            body: format!("{subject} (sample ticket)"),
            ..Default::default()
        },
        external_ref: None,
        idempotency: None,
        max_attempts: 1,
        mode: ApiKeyMode::Live,
    };
    let mut tx = past.begin().await?;
    let created = bounty_store::insert_task(&mut tx, account, &new, None, past.now())
        .await
        .context("a demo ticket")?;
    let bounty_store::Inserted::New(task) = created else {
        return Ok(None);
    };
    tx.commit().await?;
    // The task is due at the past clock's time, so only it is claimed:
    // everything queued since is due later.
    let claimed = past
        .claim_tasks("demo-history", 1, Duration::from_secs(600))
        .await?
        .into_iter()
        .find(|c| c.task.id == task.id)
        .context("the demo ticket was not claimed")?;
    let call = NewModelCall {
        model: super::DEMO_MODEL.to_owned(),
        provider: Some("llama".into()),
        prompt_tokens: 180,
        completion_tokens: 48,
        cached_tokens: 0,
        reasoning_tokens: 0,
        latency_us: 900_000,
        cost: bounty_core::Money::from_micros(180, bounty_core::Currency::USD),
        cache_hit: false,
        byok: false,
        error: None,
        verdict: Some(decision),
        shadow: false,
    };
    let end = AttemptEnd::Completed(TaskOutput {
        handoff: None,
        text: if pass {
            "Thanks for writing. I have taken care of it: you will see the change within a day.".into()
        } else {
            "I am not sure.".into()
        },
        errors: None,
        model: super::DEMO_MODEL.to_owned(),
        transcript: serde_json::json!([]),
        decision,
        verdicts: Vec::new(),
        cache: None,
    });
    bounty_agents::finish::finish_attempt(past, &claimed, &end, &[call])
        .await
        .context("finishing a demo ticket")?;
    Ok(past.outcome_of_task(account, task.id).await?.map(|o| o.id))
}
