//! Conversations: what a customer's message does to the task it is for.
//!
//! A task is a conversation of turns. Its input is the customer's first
//! message; each later customer message, and each turn's answer, is a
//! message of the conversation. [`on_customer_message`] decides, from where
//! the task and its outcome stand, whether a new message waits for a turn
//! that will read it, starts a new turn, or finds the conversation closed.
//! It is pure: the caller reads the task and its outcome under the task's
//! row lock, and writes what this decides in the same transaction.
//!
//! | Task                  | Outcome                               | Effect                                |
//! |-----------------------|---------------------------------------|---------------------------------------|
//! | `queued`              | any                                   | append for the queued turn            |
//! | `running`             | any                                   | append for the next turn              |
//! | `completed`, `failed` | `provisional` (the answer waits)      | continue: append, queue the next turn |
//! | `completed`, `failed` | `resolved`, final, or none            | closed                                |
//!
//! A message that arrives while a turn runs belongs to the next turn: the
//! running turn may already have read the conversation. Its finish sees a
//! customer message of a later turn and queues that turn instead of
//! settling, so no message is ever left unanswered. A closed conversation
//! refuses an API message (`409 conversation_closed`); a helpdesk's is
//! kept as evidence, for the turn a reopen may resume.

use crate::outcome::{ChargeEffect, OutcomeEvent, OutcomeStatus, Signal, Transition};
use crate::task::TaskStatus;

crate::stored_enum! {
    /// Who wrote a message of a conversation.
    pub enum MessageRole("message role") {
        /// The customer (the ticket's requester).
        Customer = "customer",
        /// The agent: one turn's answer.
        Agent = "agent",
    }
}

crate::stored_enum! {
    /// Where a message of a conversation came in.
    pub enum MessageSource("message source") {
        /// `POST /v1/tasks/{id}/messages`.
        Api = "api",
        /// A helpdesk's `customer_replied` (or reopen) event.
        Helpdesk = "helpdesk",
        /// The agent's own answer.
        Agent = "agent",
    }
}

/// The most characters of one message's body.
pub const MAX_MESSAGE_CHARS: usize = 32_000;

/// What a customer's message does to its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageEffect {
    /// Append the message for `turn`, which is queued or will be: nothing
    /// else changes.
    Append { turn: i32 },
    /// The agent's answer waits for the customer: append the message for
    /// `turn`, continue the outcome and queue that turn.
    Continue { turn: i32 },
    /// The conversation is over (resolved, failed, reversed or escalated,
    /// or the task failed before it had an outcome). `turn` is the turn a
    /// reopen would resume, for a message kept as evidence.
    Closed { turn: i32 },
}

/// What a customer's message does to a task in `task` status on `turn`,
/// whose outcome (if it has one yet) is `outcome`. See the module table.
pub fn on_customer_message(task: TaskStatus, turn: i32, outcome: Option<OutcomeStatus>) -> MessageEffect {
    let next = turn.saturating_add(1);
    match (task, outcome) {
        (TaskStatus::Queued, _) => MessageEffect::Append { turn },
        (TaskStatus::Running, _) => MessageEffect::Append { turn: next },
        (TaskStatus::Completed | TaskStatus::Failed, Some(OutcomeStatus::Provisional)) => {
            MessageEffect::Continue { turn: next }
        }
        (TaskStatus::Completed | TaskStatus::Failed, _) => MessageEffect::Closed { turn: next },
    }
}

/// Whether an applied outcome transition resumes its conversation: a
/// reopen inside the window that reversed a resolved outcome's charge.
/// The outcome stays final (`failed`); the task is queued for a new turn
/// that is worked for free and never charged again.
pub fn reopen_resumes(event: &OutcomeEvent, t: &Transition) -> bool {
    matches!(event, OutcomeEvent::Signal(Signal::Reopened))
        && t.from == OutcomeStatus::Resolved
        && t.effect == ChargeEffect::Reverse
}

/// A message's body, checked: 1 to [`MAX_MESSAGE_CHARS`] characters, not
/// only whitespace, and no NUL (which Postgres refuses). The error says
/// what is wrong, for a `422` naming `body`.
pub fn check_body(body: &str) -> Result<(), &'static str> {
    if body.trim().is_empty() {
        return Err("must not be empty");
    }
    if body.chars().count() > MAX_MESSAGE_CHARS {
        return Err("must be at most 32000 characters");
    }
    if body.contains('\0') {
        return Err("must not contain a NUL character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutcomeStatus as O;
    use TaskStatus as T;

    #[test]
    fn the_table() {
        for outcome in [None, Some(O::Verifying), Some(O::Provisional), Some(O::Failed)] {
            assert_eq!(
                on_customer_message(T::Queued, 2, outcome),
                MessageEffect::Append { turn: 2 }
            );
            assert_eq!(
                on_customer_message(T::Running, 2, outcome),
                MessageEffect::Append { turn: 3 }
            );
        }
        for task in [T::Completed, T::Failed] {
            assert_eq!(
                on_customer_message(task, 1, Some(O::Provisional)),
                MessageEffect::Continue { turn: 2 }
            );
            for outcome in [
                None,
                Some(O::Resolved),
                Some(O::Failed),
                Some(O::Reversed),
                Some(O::Escalated),
            ] {
                assert_eq!(
                    on_customer_message(task, 1, outcome),
                    MessageEffect::Closed { turn: 2 }
                );
            }
        }
    }

    #[test]
    fn only_a_reopen_that_reverses_a_charge_resumes() {
        let t = |from, to, effect| Transition {
            from,
            to,
            effect,
            reason: String::new(),
        };
        let reopen = OutcomeEvent::Signal(Signal::Reopened);
        assert!(reopen_resumes(
            &reopen,
            &t(O::Resolved, O::Failed, ChargeEffect::Reverse)
        ));
        // A reopen of a waiting answer fails it; one after the window
        // changes nothing; an escalation ends the conversation.
        assert!(!reopen_resumes(
            &reopen,
            &t(O::Provisional, O::Failed, ChargeEffect::None)
        ));
        assert!(!reopen_resumes(
            &reopen,
            &t(O::Failed, O::Failed, ChargeEffect::None)
        ));
        let escalated = OutcomeEvent::Signal(Signal::Escalated);
        assert!(!reopen_resumes(
            &escalated,
            &t(O::Resolved, O::Escalated, ChargeEffect::Reverse)
        ));
    }

    #[test]
    fn bodies_are_bounded() {
        assert!(check_body("Still broken.").is_ok());
        assert!(check_body(&"é".repeat(MAX_MESSAGE_CHARS)).is_ok());
        assert_eq!(check_body(" \n"), Err("must not be empty"));
        assert_eq!(check_body(""), Err("must not be empty"));
        assert!(check_body(&"a".repeat(MAX_MESSAGE_CHARS + 1)).is_err());
        assert_eq!(check_body("a\0b"), Err("must not contain a NUL character"));
        assert_eq!(MessageRole::Customer.to_string(), "customer");
        assert_eq!(
            "helpdesk".parse::<MessageSource>().unwrap(),
            MessageSource::Helpdesk
        );
    }
}
