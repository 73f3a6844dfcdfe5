//! The outcome state machine: when a task's result counts as resolved,
//! and so when it is charged, or when a charge is reversed.
//!
//! An outcome starts `verifying`. Its verifiers' combined decision moves
//! it on; a decision of `pending` parks it as `provisional` until the
//! ticket source sends a signal or the verification window lapses. Only
//! `resolved` is charged, and an outcome is charged at most once: every
//! path that leaves `resolved` carries a [`ChargeEffect::Reverse`], and no
//! path leads back into it. [`transition`] is the only place these rules
//! live; it is pure, so the caller supplies the clock's view of the world
//! as an [`OutcomeContext`].
//!
//! | From                 | Event                                              | Context                  | To                | Effect  |
//! |----------------------|----------------------------------------------------|--------------------------|-------------------|---------|
//! | `verifying`          | `Verified(pass)`                                   |                          | `resolved`        | charge  |
//! | `verifying`          | `Verified(fail)`                                   |                          | `failed`          | none    |
//! | `verifying`          | `Verified(pending)`                                |                          | `provisional`     | none    |
//! | `verifying`          | `HandedOff`                                        |                          | `escalated`       | none    |
//! | `verifying`          | `TurnFailed`                                       |                          | `failed`          | none    |
//! | `verifying`          | a signal, `WindowLapsed`, `GoodwillReversal`, `Continued` |                   | error             |         |
//! | `provisional`        | `solved`, `customer_confirmed`, `csat` ≥ threshold | in window                | `resolved`        | charge  |
//! | `provisional`        | `reopened`, `csat` < threshold                     | in window                | `failed`          | none    |
//! | `provisional`        | `escalated`                                        | in window                | `escalated`       | none    |
//! | `provisional`        | `WindowLapsed`                                     | lapse decision `pass`    | `resolved`        | charge  |
//! | `provisional`        | `WindowLapsed`                                     | any other lapse decision | `failed`          | none    |
//! | `provisional`        | `Continued`                                        | in window                | `verifying`       | none    |
//! | `provisional`        | `Continued`                                        | window over              | error             |         |
//! | `provisional`        | `Verified`, `GoodwillReversal`, `HandedOff`, `TurnFailed` |                   | error             |         |
//! | `resolved`           | `reopened`                                         | in window                | `failed`          | reverse |
//! | `resolved`           | `escalated`                                        | in window                | `escalated`       | reverse |
//! | `resolved`           | `reopened`                                         | window over              | `resolved`        | none    |
//! | `resolved`           | any other signal, `WindowLapsed`                   |                          | `resolved`        | none    |
//! | `resolved`           | `GoodwillReversal`                                 | in window or in goodwill | `reversed`        | reverse |
//! | `resolved`           | `GoodwillReversal`                                 | neither                  | error             |         |
//! | `resolved`           | `Verified`, `Continued`, `HandedOff`, `TurnFailed` |                          | error             |         |
//! | final (`failed`, `reversed`, `escalated`) | any signal, `WindowLapsed`, `HandedOff`, `TurnFailed` | | unchanged     | none    |
//! | final                | `Verified`, `GoodwillReversal`, `DisputeAccepted`, `Continued` |              | error             |         |
//!
//! `escalated` is the hand-off: the ticket went to a person, so the agent
//! did not resolve it. It is never charged (escalation is free) and is
//! counted apart from `failed` in usage. It comes from the ticket source
//! (the `escalated` signal) or from the agent itself (`HandedOff`: its
//! `handoff` tool, or a verifier failure after the last cascade step).
//!
//! The outcome is per conversation, not per answer. A task is a
//! conversation of turns: when the customer replies to an answer that
//! waits (`provisional`), `Continued` takes the outcome back to
//! `verifying`, and the next turn's verdict decides it again. Only a
//! `provisional` outcome can continue, and a provisional outcome was never
//! charged, so the conversation is charged at most once, when it is
//! resolved. A turn that fails for good ends it (`TurnFailed`). A reopen
//! inside the window reverses a resolved outcome's charge (to `failed`)
//! and resumes the conversation, but the outcome stays final: the turns of
//! a resumed conversation are worked for free and never move it again
//! (`Verified` on a final outcome is refused; the caller does not send it,
//! and a hand-off or failure there is only recorded).
//!
//! A signal from the ticket source applies only to an outcome whose
//! policy has an `external` verifier, and only inside its window: any
//! other signal is refused ([`TransitionError::SignalNotApplicable`], the
//! API's 409 `signal_not_applicable`), so a customer's helpdesk can never
//! undo a charge that its verifiers alone decided, nor one whose window
//! has closed. A provisional outcome whose window closed is decided by
//! the lapse, not by a late signal.
//!
//! A `csat` signal whose score is outside 1 to 5 is an error in every
//! status. Signals that change nothing are still accepted (not errors) so
//! the caller can record them as evidence: the ticket source does not know
//! our states and may send anything at any time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::verdict::Decision;
use crate::verification::VerificationPolicy;

/// Where an outcome is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// The verifiers have not decided yet.
    Verifying,
    /// Waiting for a signal from the ticket source within the window.
    Provisional,
    /// Done, and charged.
    Resolved,
    /// Not done: never charged. Final.
    Failed,
    /// Was resolved and charged; the charge has been reversed. Final.
    Reversed,
    /// Handed to a person: the agent did not resolve it. Never charged
    /// (escalation is free). Final.
    Escalated,
}

impl OutcomeStatus {
    pub const ALL: [OutcomeStatus; 6] = [
        OutcomeStatus::Verifying,
        OutcomeStatus::Provisional,
        OutcomeStatus::Resolved,
        OutcomeStatus::Failed,
        OutcomeStatus::Reversed,
        OutcomeStatus::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Verifying => "verifying",
            OutcomeStatus::Provisional => "provisional",
            OutcomeStatus::Resolved => "resolved",
            OutcomeStatus::Failed => "failed",
            OutcomeStatus::Reversed => "reversed",
            OutcomeStatus::Escalated => "escalated",
        }
    }

    /// Whether no event can change the status any more. `resolved` is not
    /// final: a reopen inside the window or a goodwill reversal can still
    /// undo it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OutcomeStatus::Failed | OutcomeStatus::Reversed | OutcomeStatus::Escalated
        )
    }

    /// Whether an outcome in this status stands charged.
    pub fn charged(self) -> bool {
        self == OutcomeStatus::Resolved
    }

    /// Whether the outcome is decided (`resolved`, or final: `failed`,
    /// `reversed`, `escalated`): it has a decision time and counts in
    /// usage.
    pub fn decided(self) -> bool {
        self == OutcomeStatus::Resolved || self.is_final()
    }
}

impl fmt::Display for OutcomeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown outcome status string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown outcome status {0:?}; expected verifying, provisional, resolved, failed, reversed or escalated"
)]
pub struct UnknownOutcomeStatus(pub String);

impl FromStr for OutcomeStatus {
    type Err = UnknownOutcomeStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutcomeStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownOutcomeStatus(s.to_owned()))
    }
}

/// A resolution signal from the ticket source.
///
/// ```json
/// {"kind": "solved"}
/// {"kind": "csat", "score": 4}
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// The ticket was marked solved.
    Solved,
    /// The ticket was reopened.
    Reopened,
    /// The customer said the answer solved their problem.
    CustomerConfirmed,
    /// A satisfaction score, 1 (worst) to 5 (best).
    Csat { score: u8 },
    /// The ticket was handed to a person: the agent did not resolve it.
    Escalated,
}

impl Signal {
    pub fn kind(self) -> &'static str {
        match self {
            Signal::Solved => "solved",
            Signal::Reopened => "reopened",
            Signal::CustomerConfirmed => "customer_confirmed",
            Signal::Csat { .. } => "csat",
            Signal::Escalated => "escalated",
        }
    }
}

impl fmt::Display for Signal {
    /// `solved`, or `csat 4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signal::Csat { score } => write!(f, "csat {score}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Something that happened to an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OutcomeEvent {
    /// The verifiers' combined decision.
    Verified(Decision),
    /// A signal from the ticket source.
    Signal(Signal),
    /// The verification window has passed (the caller's clock says so).
    WindowLapsed,
    /// An operator reverses a resolved outcome's charge.
    GoodwillReversal,
    /// The customer's dispute of the charge was accepted (by the operator
    /// or the plan's dispute policy).
    DisputeAccepted,
    /// The customer replied to an answer that waits for a signal: the
    /// conversation goes on, and its next turn decides the outcome.
    Continued,
    /// The agent handed the ticket to a person (its `handoff` tool, or a
    /// verifier failure after the last cascade step), saying why.
    HandedOff { reason: String },
    /// A later turn of the conversation failed for good (no attempts
    /// left, or a permanent error).
    TurnFailed,
}

impl fmt::Display for OutcomeEvent {
    /// `verified pass`, `signal csat 4`, `window lapse`, `goodwill reversal`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutcomeEvent::Verified(d) => write!(f, "verified {d}"),
            OutcomeEvent::Signal(s) => write!(f, "signal {s}"),
            OutcomeEvent::WindowLapsed => f.write_str("window lapse"),
            OutcomeEvent::GoodwillReversal => f.write_str("goodwill reversal"),
            OutcomeEvent::DisputeAccepted => f.write_str("dispute accepted"),
            OutcomeEvent::Continued => f.write_str("continued"),
            OutcomeEvent::HandedOff { .. } => f.write_str("handed off"),
            OutcomeEvent::TurnFailed => f.write_str("turn failed"),
        }
    }
}

/// What a transition does to the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChargeEffect {
    /// Nothing.
    None,
    /// Charge the outcome (it just became resolved).
    Charge,
    /// Reverse the outcome's charge (it just stopped being resolved).
    Reverse,
}

impl ChargeEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeEffect::None => "none",
            ChargeEffect::Charge => "charge",
            ChargeEffect::Reverse => "reverse",
        }
    }
}

impl fmt::Display for ChargeEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not a stored name of this kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a stored {1}")]
pub struct BadStoredName(pub String, pub &'static str);

impl FromStr for ChargeEffect {
    type Err = BadStoredName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ChargeEffect::None, ChargeEffect::Charge, ChargeEffect::Reverse]
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| BadStoredName(s.to_owned(), "charge effect"))
    }
}

crate::stored_enum! {
    /// What an entry of an outcome's receipt records.
    pub enum ReceiptEvent("receipt event") {
        /// The verifiers' verdict.
        Verified = "verified",
        /// A signal from the ticket source, applied.
        Signal = "signal",
        /// A signal from the ticket source, refused (`signal_not_applicable`).
        SignalRefused = "signal_refused",
        /// The window lapsed with no signal.
        WindowLapsed = "window_lapsed",
        /// An operator's goodwill reversal.
        GoodwillReversal = "goodwill_reversal",
        /// The task failed: the outcome is failed from the start.
        TaskFailed = "task_failed",
        /// The customer disputed the charge (nothing changes yet).
        DisputeOpened = "dispute_opened",
        /// The dispute was accepted: the charge is reversed.
        DisputeAccepted = "dispute_accepted",
        /// The dispute was rejected: the charge stands.
        DisputeRejected = "dispute_rejected",
        /// The customer replied to a waiting answer: the conversation goes on.
        Continued = "continued",
        /// The agent handed the ticket to a person: escalated, never charged.
        HandedOff = "handed_off",
    }
}

impl ReceiptEvent {
    /// The receipt entry of an applied event.
    pub const fn of(event: &OutcomeEvent) -> ReceiptEvent {
        match event {
            OutcomeEvent::Verified(_) => ReceiptEvent::Verified,
            OutcomeEvent::Signal(_) => ReceiptEvent::Signal,
            OutcomeEvent::WindowLapsed => ReceiptEvent::WindowLapsed,
            OutcomeEvent::GoodwillReversal => ReceiptEvent::GoodwillReversal,
            OutcomeEvent::DisputeAccepted => ReceiptEvent::DisputeAccepted,
            OutcomeEvent::Continued => ReceiptEvent::Continued,
            OutcomeEvent::HandedOff { .. } => ReceiptEvent::HandedOff,
            OutcomeEvent::TurnFailed => ReceiptEvent::TaskFailed,
        }
    }
}

/// The facts, as of the event, that a transition depends on. The caller
/// computes them from its injected clock and the agent's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeContext {
    /// Whether the verification window is still open.
    pub in_window: bool,
    /// Whether the goodwill period (after the window) is still open.
    pub in_goodwill: bool,
    /// The decision when the window lapses with no signal; anything but
    /// `pass` fails the outcome.
    pub lapse_decision: Decision,
    /// CSAT scores at or above this confirm; below it they fail.
    pub csat_threshold: u8,
    /// Whether the policy awaits the ticket source (has an `external`
    /// verifier): only then do its signals apply.
    pub external: bool,
}

impl OutcomeContext {
    /// The context for `policy`, given where the clock stands.
    pub fn new(policy: &VerificationPolicy, in_window: bool, in_goodwill: bool) -> Self {
        OutcomeContext {
            in_window,
            in_goodwill,
            lapse_decision: policy.lapse_decision,
            csat_threshold: policy.csat_threshold,
            external: policy.has_external(),
        }
    }
}

/// One accepted step of the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    pub from: OutcomeStatus,
    /// Equal to `from` when the event is only recorded as evidence.
    pub to: OutcomeStatus,
    pub effect: ChargeEffect,
    /// Why, in words a customer can read on the outcome's timeline.
    pub reason: String,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The event makes no sense in the outcome's status (say, a second
    /// verdict, or a signal before the verifiers have decided).
    #[error("{event} is not allowed while the outcome is {status}")]
    NotAllowed {
        /// The event, as [`OutcomeEvent`]'s `Display` spells it.
        event: String,
        status: OutcomeStatus,
    },
    /// A goodwill reversal after both the window and the goodwill period.
    #[error("goodwill reversal is not allowed: the window and the goodwill period have both passed")]
    GoodwillExpired,
    /// A CSAT score outside 1 to 5.
    #[error("csat score {0} is outside 1 to 5")]
    BadCsatScore(u8),
    /// A ticket-source signal for an outcome that does not await one: its
    /// policy has no `external` verifier, or its window is over.
    #[error("signal {signal} does not apply: {why}")]
    SignalNotApplicable {
        /// The signal, as [`Signal`]'s `Display` spells it.
        signal: String,
        why: &'static str,
    },
    /// The customer replied after the window of the answer they reply to:
    /// the window's lapse decides that outcome, and the conversation is
    /// over.
    #[error("the conversation cannot continue: the outcome's verification window is over")]
    WindowClosed,
}

/// Applies `event` to an outcome in `status`. See the module docs for the
/// table of rules.
pub fn transition(
    status: OutcomeStatus,
    event: &OutcomeEvent,
    ctx: &OutcomeContext,
) -> Result<Transition, TransitionError> {
    use ChargeEffect as E;
    use OutcomeStatus as S;

    refuse(status, event, ctx)?;
    let step = |to: OutcomeStatus, effect: ChargeEffect, reason: String| {
        Ok(Transition {
            from: status,
            to,
            effect,
            reason,
        })
    };
    let not_allowed = || {
        Err(TransitionError::NotAllowed {
            event: event.to_string(),
            status,
        })
    };
    match (status, event) {
        (S::Verifying, &OutcomeEvent::Verified(decision)) => {
            let (to, effect, reason) = verified(decision);
            step(to, effect, reason.into())
        }
        (_, OutcomeEvent::Verified(_)) => not_allowed(),

        (S::Verifying, OutcomeEvent::HandedOff { reason }) => step(
            S::Escalated,
            E::None,
            format!(
                "handed to a person by the agent ({}): escalation is never charged",
                reason.trim()
            ),
        ),
        (S::Verifying, OutcomeEvent::TurnFailed) => step(
            S::Failed,
            E::None,
            "a turn of the conversation failed: never charged".into(),
        ),
        (S::Provisional, OutcomeEvent::Continued) if ctx.in_window => step(
            S::Verifying,
            E::None,
            "the customer replied: the conversation goes on, and its next turn decides".into(),
        ),
        (S::Provisional, OutcomeEvent::Continued) => Err(TransitionError::WindowClosed),
        (
            S::Failed | S::Reversed | S::Escalated,
            OutcomeEvent::HandedOff { .. } | OutcomeEvent::TurnFailed,
        ) => step(
            status,
            E::None,
            format!("{event} in a resumed conversation, recorded; the outcome is {status}, which is final"),
        ),
        (S::Verifying | S::Resolved | S::Failed | S::Reversed | S::Escalated, OutcomeEvent::Continued)
        | (S::Provisional | S::Resolved, OutcomeEvent::HandedOff { .. } | OutcomeEvent::TurnFailed) => {
            not_allowed()
        }

        (S::Provisional, &OutcomeEvent::Signal(signal)) => {
            let (to, effect, reason) = judge_signal(signal, ctx);
            step(to, effect, reason)
        }
        (S::Provisional, OutcomeEvent::WindowLapsed) => {
            let (to, effect, reason) = lapse(ctx, "the window lapsed with no signal");
            step(to, effect, reason)
        }

        (S::Resolved, OutcomeEvent::Signal(Signal::Reopened)) => step(
            S::Failed,
            E::Reverse,
            "reopened inside the window: never charged (charge reversed)".into(),
        ),
        (S::Resolved, OutcomeEvent::Signal(Signal::Escalated)) => step(
            S::Escalated,
            E::Reverse,
            "handed to a person inside the window: escalation is never charged (charge reversed)".into(),
        ),
        (S::Resolved, &OutcomeEvent::Signal(signal)) => step(
            S::Resolved,
            E::None,
            format!("signal {signal} recorded as evidence; already resolved"),
        ),
        (S::Resolved, OutcomeEvent::WindowLapsed) => {
            step(S::Resolved, E::None, "the window lapsed; already resolved".into())
        }
        (S::Resolved, OutcomeEvent::GoodwillReversal) if ctx.in_window || ctx.in_goodwill => step(
            S::Reversed,
            E::Reverse,
            "goodwill reversal by an operator: charge reversed".into(),
        ),
        (S::Resolved, OutcomeEvent::GoodwillReversal) => Err(TransitionError::GoodwillExpired),
        (S::Resolved, OutcomeEvent::DisputeAccepted) => step(
            S::Reversed,
            E::Reverse,
            "the customer's dispute was accepted: charge reversed".into(),
        ),

        (S::Failed | S::Reversed | S::Escalated, &OutcomeEvent::Signal(signal)) => step(
            status,
            E::None,
            format!("signal {signal} recorded as evidence; the outcome is {status}, which is final"),
        ),
        (S::Failed | S::Reversed | S::Escalated, OutcomeEvent::WindowLapsed) => step(
            status,
            E::None,
            format!("the window lapsed; the outcome is {status}, which is final"),
        ),

        (
            S::Verifying,
            OutcomeEvent::Signal(_) | OutcomeEvent::WindowLapsed | OutcomeEvent::GoodwillReversal,
        )
        | (
            S::Provisional | S::Failed | S::Reversed | S::Escalated,
            OutcomeEvent::GoodwillReversal | OutcomeEvent::DisputeAccepted,
        )
        | (S::Verifying, OutcomeEvent::DisputeAccepted) => not_allowed(),
    }
}

/// The events refused before any rule applies: a CSAT score outside 1-5,
/// and a signal for a live outcome (provisional or resolved) whose policy
/// does not take signals or whose window is over.
fn refuse(status: OutcomeStatus, event: &OutcomeEvent, ctx: &OutcomeContext) -> Result<(), TransitionError> {
    if let OutcomeEvent::Signal(Signal::Csat { score }) = *event
        && !(1..=5).contains(&score)
    {
        return Err(TransitionError::BadCsatScore(score));
    }
    if let OutcomeEvent::Signal(signal) = *event
        && matches!(status, OutcomeStatus::Provisional | OutcomeStatus::Resolved)
    {
        let why = if !ctx.external {
            Some("the agent's verification policy has no `external` verifier, so its verifiers alone decide")
        } else if !ctx.in_window {
            Some("the outcome's verification window is over")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(TransitionError::SignalNotApplicable {
                signal: signal.to_string(),
                why,
            });
        }
    }
    Ok(())
}

/// What the verifiers' decision makes of a verifying outcome.
fn verified(decision: Decision) -> (OutcomeStatus, ChargeEffect, &'static str) {
    match decision {
        Decision::Pass => (
            OutcomeStatus::Resolved,
            ChargeEffect::Charge,
            "verifiers passed: resolved and charged",
        ),
        Decision::Fail => (
            OutcomeStatus::Failed,
            ChargeEffect::None,
            "verifiers failed: never charged",
        ),
        Decision::Pending => (
            OutcomeStatus::Provisional,
            ChargeEffect::None,
            "waiting for a signal from the ticket source within the window",
        ),
    }
}

/// What a signal decides about a provisional outcome.
fn judge_signal(signal: Signal, ctx: &OutcomeContext) -> (OutcomeStatus, ChargeEffect, String) {
    let confirms = match signal {
        Signal::Solved | Signal::CustomerConfirmed => true,
        Signal::Reopened => false,
        Signal::Escalated => {
            return (
                OutcomeStatus::Escalated,
                ChargeEffect::None,
                "handed to a person within the window: escalation is never charged".into(),
            );
        }
        Signal::Csat { score } => score >= ctx.csat_threshold,
    };
    let why = match signal {
        Signal::Csat { score } if confirms => {
            format!("csat {score} is at least the threshold {}", ctx.csat_threshold)
        }
        Signal::Csat { score } => {
            format!("csat {score} is below the threshold {}", ctx.csat_threshold)
        }
        other => format!("ticket {} within the window", other.kind().replace('_', " ")),
    };
    if confirms {
        (
            OutcomeStatus::Resolved,
            ChargeEffect::Charge,
            format!("{why}: resolved and charged"),
        )
    } else {
        (
            OutcomeStatus::Failed,
            ChargeEffect::None,
            format!("{why}: never charged"),
        )
    }
}

/// What the window's lapse decides about a provisional outcome: its
/// policy's lapse decision.
fn lapse(ctx: &OutcomeContext, prefix: &str) -> (OutcomeStatus, ChargeEffect, String) {
    if ctx.lapse_decision == Decision::Pass {
        (
            OutcomeStatus::Resolved,
            ChargeEffect::Charge,
            format!("{prefix}; the lapse decision is pass: resolved and charged"),
        )
    } else {
        (
            OutcomeStatus::Failed,
            ChargeEffect::None,
            format!(
                "{prefix}; the lapse decision is {}: never charged",
                ctx.lapse_decision
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use OutcomeStatus as S;

    fn ctx(in_window: bool) -> OutcomeContext {
        OutcomeContext {
            in_window,
            in_goodwill: false,
            lapse_decision: Decision::Pass,
            csat_threshold: 4,
            external: true,
        }
    }

    /// `(to, effect)` of an accepted transition, asserting `from` is kept.
    fn go(status: OutcomeStatus, event: OutcomeEvent, ctx: OutcomeContext) -> (OutcomeStatus, ChargeEffect) {
        let t = transition(status, &event, &ctx).unwrap_or_else(|e| panic!("{status} + {event}: {e}"));
        assert_eq!(t.from, status);
        assert!(!t.reason.is_empty());
        (t.to, t.effect)
    }

    fn refused(status: OutcomeStatus, event: OutcomeEvent, ctx: OutcomeContext) -> TransitionError {
        transition(status, &event, &ctx).expect_err(&format!("{status} + {event} should be refused"))
    }

    const ALL_SIGNALS: [Signal; 6] = [
        Signal::Solved,
        Signal::Reopened,
        Signal::CustomerConfirmed,
        Signal::Csat { score: 1 },
        Signal::Csat { score: 5 },
        Signal::Escalated,
    ];

    #[test]
    fn status_strings_round_trip() {
        for s in OutcomeStatus::ALL {
            assert_eq!(s.as_str().parse::<OutcomeStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert!("done".parse::<OutcomeStatus>().is_err());
        assert!(S::Failed.is_final() && S::Reversed.is_final() && S::Escalated.is_final());
        assert!(!S::Resolved.is_final() && S::Resolved.decided() && S::Escalated.decided());
        assert!(!S::Verifying.decided() && !S::Provisional.decided());
        assert_eq!(
            OutcomeStatus::ALL
                .into_iter()
                .filter(|s| s.charged())
                .collect::<Vec<_>>(),
            [S::Resolved]
        );
    }

    #[test]
    fn signal_serde_shape() {
        assert_eq!(
            serde_json::to_value(Signal::Solved).unwrap(),
            serde_json::json!({"kind": "solved"})
        );
        assert_eq!(
            serde_json::to_value(Signal::Csat { score: 4 }).unwrap(),
            serde_json::json!({"kind": "csat", "score": 4})
        );
        let back: Signal = serde_json::from_str(r#"{"kind":"customer_confirmed"}"#).unwrap();
        assert_eq!(back, Signal::CustomerConfirmed);
        assert!(serde_json::from_str::<Signal>(r#"{"kind":"closed"}"#).is_err());
        assert_eq!(
            serde_json::to_value(ChargeEffect::Reverse).unwrap(),
            serde_json::json!("reverse")
        );
    }

    #[test]
    fn verifying_takes_only_a_verdict() {
        let c = ctx(true);
        assert_eq!(
            go(S::Verifying, OutcomeEvent::Verified(Decision::Pass), c),
            (S::Resolved, ChargeEffect::Charge)
        );
        assert_eq!(
            go(S::Verifying, OutcomeEvent::Verified(Decision::Fail), c),
            (S::Failed, ChargeEffect::None)
        );
        assert_eq!(
            go(S::Verifying, OutcomeEvent::Verified(Decision::Pending), c),
            (S::Provisional, ChargeEffect::None)
        );
        for event in [
            OutcomeEvent::Signal(Signal::Solved),
            OutcomeEvent::WindowLapsed,
            OutcomeEvent::GoodwillReversal,
        ] {
            assert!(matches!(
                refused(S::Verifying, event, c),
                TransitionError::NotAllowed { .. }
            ));
        }
    }

    #[test]
    fn a_second_verdict_is_refused() {
        for status in [S::Provisional, S::Resolved, S::Failed, S::Reversed, S::Escalated] {
            let err = refused(status, OutcomeEvent::Verified(Decision::Pass), ctx(true));
            assert_eq!(
                err.to_string(),
                format!("verified pass is not allowed while the outcome is {status}")
            );
        }
    }

    #[test]
    fn provisional_signals_inside_the_window() {
        let c = ctx(true);
        let charge = (S::Resolved, ChargeEffect::Charge);
        let fail = (S::Failed, ChargeEffect::None);
        assert_eq!(
            go(S::Provisional, OutcomeEvent::Signal(Signal::Solved), c),
            charge
        );
        assert_eq!(
            go(S::Provisional, OutcomeEvent::Signal(Signal::CustomerConfirmed), c),
            charge
        );
        assert_eq!(
            go(S::Provisional, OutcomeEvent::Signal(Signal::Csat { score: 4 }), c),
            charge
        );
        assert_eq!(
            go(S::Provisional, OutcomeEvent::Signal(Signal::Csat { score: 3 }), c),
            fail
        );
        assert_eq!(
            go(S::Provisional, OutcomeEvent::Signal(Signal::Reopened), c),
            fail
        );
        assert!(matches!(
            refused(S::Provisional, OutcomeEvent::GoodwillReversal, c),
            TransitionError::NotAllowed { .. }
        ));
    }

    #[test]
    fn a_hand_off_is_escalated_and_never_charged() {
        let handed = OutcomeEvent::Signal(Signal::Escalated);
        assert_eq!(
            go(S::Provisional, handed.clone(), ctx(true)),
            (S::Escalated, ChargeEffect::None)
        );
        // Charged, then handed to a person inside the window: the charge
        // is reversed, as for a reopen.
        assert_eq!(
            go(S::Resolved, handed.clone(), ctx(true)),
            (S::Escalated, ChargeEffect::Reverse)
        );
        for status in [S::Provisional, S::Resolved] {
            assert!(matches!(
                refused(status, handed.clone(), ctx(false)),
                TransitionError::SignalNotApplicable { .. }
            ));
        }
        assert!(matches!(
            refused(S::Escalated, OutcomeEvent::DisputeAccepted, ctx(true)),
            TransitionError::NotAllowed { .. }
        ));
        assert_eq!(Signal::Escalated.to_string(), "escalated");
        assert_eq!(
            serde_json::to_value(Signal::Escalated).unwrap(),
            serde_json::json!({"kind": "escalated"})
        );
    }

    #[test]
    fn a_reply_to_a_waiting_answer_continues_the_conversation_inside_the_window() {
        assert_eq!(
            go(S::Provisional, OutcomeEvent::Continued, ctx(true)),
            (S::Verifying, ChargeEffect::None)
        );
        assert_eq!(
            refused(S::Provisional, OutcomeEvent::Continued, ctx(false)),
            TransitionError::WindowClosed
        );
        // Only a waiting answer continues: a resolved or final outcome's
        // conversation is closed, and a verifying one has its turn queued.
        for status in [S::Verifying, S::Resolved, S::Failed, S::Reversed, S::Escalated] {
            assert!(matches!(
                refused(status, OutcomeEvent::Continued, ctx(true)),
                TransitionError::NotAllowed { .. }
            ));
        }
        // The next turn decides, and a pass is the conversation's one charge.
        assert_eq!(
            go(S::Verifying, OutcomeEvent::Verified(Decision::Pass), ctx(true)),
            (S::Resolved, ChargeEffect::Charge)
        );
        assert_eq!(
            ReceiptEvent::of(&OutcomeEvent::Continued),
            ReceiptEvent::Continued
        );
        assert_eq!(ReceiptEvent::Continued.to_string(), "continued");
    }

    #[test]
    fn the_agents_hand_off_is_escalated_and_never_charged() {
        let handed = || OutcomeEvent::HandedOff {
            reason: "the customer asked for a person".into(),
        };
        let t = transition(S::Verifying, &handed(), &ctx(true)).unwrap();
        assert_eq!((t.to, t.effect), (S::Escalated, ChargeEffect::None));
        assert!(
            t.reason.contains("the customer asked for a person"),
            "{}",
            t.reason
        );
        assert_eq!(ReceiptEvent::of(&handed()), ReceiptEvent::HandedOff);
        assert_eq!(ReceiptEvent::HandedOff.to_string(), "handed_off");
        for status in [S::Provisional, S::Resolved] {
            assert!(matches!(
                refused(status, handed(), ctx(true)),
                TransitionError::NotAllowed { .. }
            ));
        }
        // A resumed conversation's turn ends on a final outcome: recorded,
        // never charged again.
        for status in [S::Failed, S::Reversed, S::Escalated] {
            assert_eq!(go(status, handed(), ctx(true)), (status, ChargeEffect::None));
            assert_eq!(
                go(status, OutcomeEvent::TurnFailed, ctx(false)),
                (status, ChargeEffect::None)
            );
            assert!(matches!(
                refused(status, OutcomeEvent::Verified(Decision::Pass), ctx(true)),
                TransitionError::NotAllowed { .. }
            ));
        }
        assert_eq!(
            go(S::Verifying, OutcomeEvent::TurnFailed, ctx(true)),
            (S::Failed, ChargeEffect::None)
        );
        assert_eq!(
            ReceiptEvent::of(&OutcomeEvent::TurnFailed),
            ReceiptEvent::TaskFailed
        );
    }

    #[test]
    fn provisional_lapse_follows_the_lapse_decision() {
        let pass = ctx(false);
        let fail = OutcomeContext {
            lapse_decision: Decision::Fail,
            ..pass
        };
        assert_eq!(
            go(S::Provisional, OutcomeEvent::WindowLapsed, pass),
            (S::Resolved, ChargeEffect::Charge)
        );
        assert_eq!(
            go(S::Provisional, OutcomeEvent::WindowLapsed, fail),
            (S::Failed, ChargeEffect::None)
        );
    }

    #[test]
    fn a_signal_applies_only_with_an_external_verifier_inside_the_window() {
        for status in [S::Provisional, S::Resolved] {
            for signal in [
                Signal::Solved,
                Signal::Reopened,
                Signal::CustomerConfirmed,
                Signal::Escalated,
            ] {
                let late = refused(status, OutcomeEvent::Signal(signal), ctx(false));
                assert!(
                    matches!(late, TransitionError::SignalNotApplicable { why, .. } if why.contains("window")),
                    "{status} + {signal}: {late}"
                );
                let no_external = OutcomeContext {
                    external: false,
                    ..ctx(true)
                };
                let refused_now = refused(status, OutcomeEvent::Signal(signal), no_external);
                assert!(
                    matches!(refused_now, TransitionError::SignalNotApplicable { why, .. } if why.contains("external")),
                    "{status} + {signal}: {refused_now}"
                );
            }
        }
        // A provisional outcome whose window is over is the lapse's to decide.
        assert_eq!(
            go(S::Provisional, OutcomeEvent::WindowLapsed, ctx(false)),
            (S::Resolved, ChargeEffect::Charge)
        );
    }

    #[test]
    fn resolved_reopen_reverses_only_inside_the_window() {
        let reopen = OutcomeEvent::Signal(Signal::Reopened);
        assert_eq!(
            go(S::Resolved, reopen.clone(), ctx(true)),
            (S::Failed, ChargeEffect::Reverse)
        );
        assert!(matches!(
            refused(S::Resolved, reopen, ctx(false)),
            TransitionError::SignalNotApplicable { .. }
        ));
    }

    #[test]
    fn resolved_keeps_other_signals_as_evidence() {
        for window in [true, false] {
            for signal in ALL_SIGNALS
                .into_iter()
                .filter(|s| !matches!(s, Signal::Reopened | Signal::Escalated))
            {
                let stay = (S::Resolved, ChargeEffect::None);
                if window {
                    assert_eq!(go(S::Resolved, OutcomeEvent::Signal(signal), ctx(window)), stay);
                }
            }
            assert_eq!(
                go(S::Resolved, OutcomeEvent::WindowLapsed, ctx(window)),
                (S::Resolved, ChargeEffect::None)
            );
        }
    }

    #[test]
    fn goodwill_reversal_needs_the_window_or_goodwill() {
        let reversed = (S::Reversed, ChargeEffect::Reverse);
        assert_eq!(
            go(S::Resolved, OutcomeEvent::GoodwillReversal, ctx(true)),
            reversed
        );
        let goodwill = OutcomeContext {
            in_goodwill: true,
            ..ctx(false)
        };
        assert_eq!(
            go(S::Resolved, OutcomeEvent::GoodwillReversal, goodwill),
            reversed
        );
        assert_eq!(
            refused(S::Resolved, OutcomeEvent::GoodwillReversal, ctx(false)),
            TransitionError::GoodwillExpired
        );
    }

    #[test]
    fn final_statuses_only_record_evidence() {
        for status in [S::Failed, S::Reversed, S::Escalated] {
            for window in [true, false] {
                for signal in ALL_SIGNALS {
                    assert_eq!(
                        go(status, OutcomeEvent::Signal(signal), ctx(window)),
                        (status, ChargeEffect::None)
                    );
                }
                assert_eq!(
                    go(status, OutcomeEvent::WindowLapsed, ctx(window)),
                    (status, ChargeEffect::None)
                );
                let goodwill = OutcomeContext {
                    in_goodwill: true,
                    ..ctx(window)
                };
                assert!(matches!(
                    refused(status, OutcomeEvent::GoodwillReversal, goodwill),
                    TransitionError::NotAllowed { .. }
                ));
            }
        }
    }

    #[test]
    fn csat_outside_one_to_five_is_refused_everywhere() {
        for status in OutcomeStatus::ALL {
            for score in [0, 6, 255] {
                assert_eq!(
                    refused(status, OutcomeEvent::Signal(Signal::Csat { score }), ctx(true)),
                    TransitionError::BadCsatScore(score)
                );
            }
        }
    }

    fn event() -> impl Strategy<Value = OutcomeEvent> {
        let decision = prop_oneof![
            Just(Decision::Pass),
            Just(Decision::Fail),
            Just(Decision::Pending)
        ];
        let signal = prop_oneof![
            Just(Signal::Solved),
            Just(Signal::Reopened),
            Just(Signal::CustomerConfirmed),
            Just(Signal::Escalated),
            (0u8..=7).prop_map(|score| Signal::Csat { score }),
        ];
        prop_oneof![
            decision.prop_map(OutcomeEvent::Verified),
            signal.prop_map(OutcomeEvent::Signal),
            Just(OutcomeEvent::WindowLapsed),
            Just(OutcomeEvent::GoodwillReversal),
            Just(OutcomeEvent::DisputeAccepted),
            Just(OutcomeEvent::Continued),
            Just(OutcomeEvent::HandedOff {
                reason: "out of scope".into()
            }),
            Just(OutcomeEvent::TurnFailed),
        ]
    }

    fn context() -> impl Strategy<Value = OutcomeContext> {
        let decision = prop_oneof![
            Just(Decision::Pass),
            Just(Decision::Fail),
            Just(Decision::Pending)
        ];
        (any::<bool>(), any::<bool>(), decision, 1u8..=5, any::<bool>()).prop_map(
            |(in_window, in_goodwill, lapse_decision, csat_threshold, external)| OutcomeContext {
                in_window,
                in_goodwill,
                lapse_decision,
                csat_threshold,
                external,
            },
        )
    }

    proptest! {
        /// Whatever arrives, in whatever order and context, an outcome is
        /// charged at most once, a reversal only undoes a standing charge,
        /// and the status says whether it stands charged.
        #[test]
        fn charged_at_most_once(steps in proptest::collection::vec((event(), context()), 0..24)) {
            let mut status = OutcomeStatus::Verifying;
            let mut net = 0i32;
            for (event, ctx) in &steps {
                let Ok(t) = transition(status, event, ctx) else { continue };
                prop_assert_eq!(t.from, status);
                match t.effect {
                    ChargeEffect::Charge => {
                        prop_assert_eq!(net, 0, "a second charge");
                        net += 1;
                    }
                    ChargeEffect::Reverse => {
                        prop_assert_eq!(net, 1, "a reverse with no charge standing");
                        net -= 1;
                    }
                    ChargeEffect::None => {}
                }
                prop_assert_eq!(t.effect == ChargeEffect::None, t.from.charged() == t.to.charged());
                if status.is_final() {
                    prop_assert_eq!(t.to, status);
                }
                status = t.to;
                prop_assert!(net == 0 || net == 1);
                prop_assert_eq!(status.charged(), net == 1);
            }
            if status.is_final() {
                prop_assert_eq!(net, 0);
            }
        }
    }
}
