//! Tasks: their input and the input policy of each source, their status,
//! and the retry schedule.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a task is in the pipeline.
///
/// `queued` → `running` → `completed` | `failed`, and `running` → `queued`
/// again when an attempt fails transiently and attempts remain (or when a
/// worker's lease expires).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for a worker (first run, or a retry after its backoff).
    Queued,
    /// A worker holds its lease and is working it.
    Running,
    /// The agent produced its output.
    Completed,
    /// No attempt succeeded; the last error is recorded.
    Failed,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 4] = [
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Completed,
        TaskStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
        }
    }

    /// Whether the task will change no more (in this pipeline stage).
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task status {0:?}; expected queued, running, completed or failed")]
pub struct UnknownStatus(pub String);

impl FromStr for TaskStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

crate::stored_enum! {
    /// How one attempt at a task ended.
    pub enum AttemptOutcome("attempt outcome") {
        /// The agent produced its output: the task is completed.
        Completed = "completed",
        /// A permanent failure, or the last attempt: the task failed.
        Failed = "failed",
        /// A transient failure with attempts left: queued again.
        Retry = "retry",
        /// The worker stopped renewing its lease.
        LeaseExpired = "lease_expired",
    }
}

/// The customer who asked, as the ticket source knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What the agent is asked to work on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// The ticket's subject line.
    #[serde(default)]
    pub subject: String,
    /// The ticket's text: what the customer wrote. Required.
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    /// Free-form JSON object, stored and shown as given.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl TaskInput {
    pub const MAX_SUBJECT_CHARS: usize = 1_000;
    pub const MAX_BODY_CHARS: usize = 100_000;
    pub const MAX_CUSTOMER_FIELD_CHARS: usize = 320;
    pub const MAX_METADATA_KEYS: usize = 50;

    /// Checks the bounds; the error names the field (`input.body`, …).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let field = |name: &str, msg: String| Err((format!("input.{name}"), msg));
        if self.body.trim().is_empty() {
            return field("body", "must not be empty".to_owned());
        }
        if self.body.chars().count() > Self::MAX_BODY_CHARS {
            return field(
                "body",
                format!("must be at most {} characters", Self::MAX_BODY_CHARS),
            );
        }
        if self.subject.chars().count() > Self::MAX_SUBJECT_CHARS {
            return field(
                "subject",
                format!("must be at most {} characters", Self::MAX_SUBJECT_CHARS),
            );
        }
        if let Some(c) = &self.customer {
            for (name, v) in [
                ("customer.id", &c.id),
                ("customer.email", &c.email),
                ("customer.name", &c.name),
            ] {
                if v.as_ref()
                    .is_some_and(|v| v.chars().count() > Self::MAX_CUSTOMER_FIELD_CHARS)
                {
                    return field(
                        name,
                        format!("must be at most {} characters", Self::MAX_CUSTOMER_FIELD_CHARS),
                    );
                }
            }
        }
        if self.metadata.len() > Self::MAX_METADATA_KEYS {
            return field(
                "metadata",
                format!("may have at most {} keys", Self::MAX_METADATA_KEYS),
            );
        }
        Ok(())
    }
}

/// What happens to a task input that breaks a bound (the bounds are
/// [`TaskInput`]'s `MAX_*` constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPolicy {
    /// Refused, the error naming the field. The API's: its caller wrote the
    /// input and can fix it, and a silently shortened request would be
    /// worse than an error.
    Refuse,
    /// Clipped to the bound, the clipped fields listed under the metadata
    /// key [`TaskInput::CLIPPED_KEY`]. A helpdesk ticket's: a customer wrote
    /// it, nobody can resend it shorter, and refusing it would lose the
    /// ticket. What is still wrong after clipping (an empty body) is
    /// refused as under [`InputPolicy::Refuse`].
    Clip,
}

impl TaskInput {
    /// The metadata key that lists the fields [`InputPolicy::Clip`] clipped
    /// (`["body"]`); absent when none was.
    pub const CLIPPED_KEY: &'static str = "clipped";

    /// The input as it is stored under `policy`, or the field at fault
    /// (`input.body`, …) and why. The one input policy of every source.
    pub fn admit(mut self, policy: InputPolicy) -> Result<TaskInput, (String, String)> {
        if policy == InputPolicy::Clip {
            let clipped = self.clip();
            if !clipped.is_empty() {
                self.metadata.insert(Self::CLIPPED_KEY.to_owned(), clipped.into());
            }
        }
        self.validate()?;
        Ok(self)
    }

    /// Cuts every bounded text field to its bound, in characters; the
    /// fields it cut, named as in [`TaskInput::validate`] without `input.`.
    fn clip(&mut self) -> Vec<&'static str> {
        fn cut(text: &mut String, max: usize) -> bool {
            match text.char_indices().nth(max) {
                Some((at, _)) => {
                    text.truncate(at);
                    true
                }
                None => false,
            }
        }
        let mut clipped = Vec::new();
        if cut(&mut self.subject, Self::MAX_SUBJECT_CHARS) {
            clipped.push("subject");
        }
        if cut(&mut self.body, Self::MAX_BODY_CHARS) {
            clipped.push("body");
        }
        if let Some(c) = &mut self.customer {
            for (name, v) in [
                ("customer.id", &mut c.id),
                ("customer.email", &mut c.email),
                ("customer.name", &mut c.name),
            ] {
                if v.as_mut().is_some_and(|v| cut(v, Self::MAX_CUSTOMER_FIELD_CHARS)) {
                    clipped.push(name);
                }
            }
        }
        clipped
    }
}

/// A uniformly random number in `[0, 1)` from the OS generator, for the
/// `unit` of [`retry_delay`] and other jitter; 0.5 in the (never seen) case
/// that the OS has no entropy to give.
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits: every value an f64 in [0, 1) can hold evenly.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// How long to wait before attempt `attempt + 1`, after `attempt` (≥ 1)
/// failed: "full jitter" exponential backoff, a uniformly random wait in
/// `[base·2^(attempt-1) / 2, base·2^(attempt-1)]`, capped at `max`.
/// `unit` is a random number in `[0, 1)`; the half floor keeps retries from
/// bunching at zero.
pub fn retry_delay(attempt: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(32);
    let ceiling = base.saturating_mul(1u32 << exp.min(31)).min(max);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ceiling.mul_f64(0.5 + unit / 2.0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn status_round_trips() {
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), s);
        }
        assert!("done".parse::<TaskStatus>().is_err());
    }

    #[test]
    fn input_errors_name_the_field() {
        let mut input = TaskInput {
            body: " ".into(),
            ..Default::default()
        };
        assert_eq!(input.validate().unwrap_err().0, "input.body");
        input.body = "hi".into();
        input.subject = "x".repeat(1001);
        assert_eq!(input.validate().unwrap_err().0, "input.subject");
        input.subject.clear();
        input.customer = Some(Customer {
            email: Some("e".repeat(400)),
            ..Default::default()
        });
        assert_eq!(input.validate().unwrap_err().0, "input.customer.email");
    }

    #[test]
    fn the_api_policy_refuses_what_the_helpdesk_policy_clips_and_marks() {
        let long = TaskInput {
            subject: "s".repeat(TaskInput::MAX_SUBJECT_CHARS + 1),
            body: "é".repeat(TaskInput::MAX_BODY_CHARS + 5),
            customer: Some(Customer {
                name: Some("n".repeat(TaskInput::MAX_CUSTOMER_FIELD_CHARS + 1)),
                email: Some("a@b.c".into()),
                id: None,
            }),
            ..Default::default()
        };
        let (field, message) = long.clone().admit(InputPolicy::Refuse).unwrap_err();
        assert_eq!(field, "input.body");
        assert!(message.contains("100000"), "{message}");

        let clipped = long.admit(InputPolicy::Clip).unwrap();
        assert_eq!(clipped.body.chars().count(), TaskInput::MAX_BODY_CHARS);
        assert!(clipped.body.chars().all(|c| c == 'é'));
        assert_eq!(clipped.subject.chars().count(), TaskInput::MAX_SUBJECT_CHARS);
        let customer = clipped.customer.as_ref().unwrap();
        assert_eq!(
            customer.name.as_ref().unwrap().chars().count(),
            TaskInput::MAX_CUSTOMER_FIELD_CHARS
        );
        assert_eq!(customer.email.as_deref(), Some("a@b.c"));
        assert_eq!(
            clipped.metadata[TaskInput::CLIPPED_KEY],
            serde_json::json!(["subject", "body", "customer.name"])
        );
    }

    #[test]
    fn input_within_bounds_is_kept_as_given_under_both_policies() {
        let input = TaskInput {
            subject: "Refund".into(),
            body: "x".repeat(TaskInput::MAX_BODY_CHARS),
            ..Default::default()
        };
        for policy in [InputPolicy::Refuse, InputPolicy::Clip] {
            assert_eq!(input.clone().admit(policy).unwrap(), input);
        }
        // Clipping mends length, not emptiness.
        let blank = TaskInput {
            body: "  ".into(),
            ..Default::default()
        };
        assert_eq!(blank.admit(InputPolicy::Clip).unwrap_err().0, "input.body");
    }

    proptest! {
        #[test]
        fn backoff_grows_and_stays_within_bounds(attempt in 1u32..100, unit in 0.0f64..1.0) {
            let base = Duration::from_millis(500);
            let max = Duration::from_secs(60);
            let d = retry_delay(attempt, base, max, unit);
            let ceiling = base.saturating_mul(1 << (attempt - 1).min(31)).min(max);
            prop_assert!(d <= ceiling);
            prop_assert!(d >= ceiling / 2);
        }
    }
}
