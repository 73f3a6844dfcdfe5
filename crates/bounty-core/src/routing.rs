//! How an agent spends on inference: the cascade over its model route,
//! the verified-answer cache, and a shadow student.
//!
//! These are the margin levers. A cascade tries the cheapest model first
//! and escalates only when the verifiers reject its output (or the judge
//! is not confident enough); the customer is still charged once per
//! resolved outcome, and every attempt's cost is recorded. The cache
//! serves an answer that was verified resolved for the same request of
//! the same agent version, and verifies it again. The shadow runs a
//! student model on a share of live tasks off the critical path, to
//! measure it against the teacher before it is promoted.
//!
//! Everything here is plain data and decisions; the worker and the store
//! act on them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::task::TaskInput;
use crate::verdict::{Decision, VerifierVerdict};

/// Basis points in one whole (100.00%).
pub const BP_WHOLE: u32 = 10_000;

/// An agent version's routing policy; every part is optional.
///
/// ```json
/// {
///   "cascade": {"max_steps": 2, "min_confidence": 0.8, "pass_rate_floor_bp": 2000, "min_samples": 20},
///   "cache": {"ttl_hours": 168},
///   "shadow": {"model": "student-q4", "share_bp": 1000}
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<Cascade>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowPolicy>,
}

/// Escalation over the route: model 1, then model 2 only if model 1's
/// output was rejected, and so on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cascade {
    /// Most models run for one task, 1 to 8; default: the whole route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
    /// A passing output whose judge is less confident than this (0 to 1)
    /// escalates as if rejected; the last step's output stands as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
    /// Skip a model (never the route's last) whose verifier pass rate on
    /// this agent is below this many basis points, once it has
    /// `min_samples` verdicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_rate_floor_bp: Option<u32>,
    /// Verdicts a model needs before its pass rate can skip it.
    #[serde(default = "default_min_samples")]
    pub min_samples: u32,
}

fn default_min_samples() -> u32 {
    20
}

/// The verified-answer cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CachePolicy {
    /// How long a verified answer may be served, 1 to 8760 hours.
    pub ttl_hours: u32,
}

/// A student model run in the background on a share of live tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowPolicy {
    /// The student's model name (a configured model).
    pub model: String,
    /// The share of tasks it shadows, in basis points (1000 = 10%).
    pub share_bp: u32,
}

/// A routing policy field that is out of range: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RoutingError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> RoutingError {
    RoutingError {
        field,
        message: message.into(),
    }
}

impl RoutingPolicy {
    /// Checks every range; the error names the field
    /// (`routing.cascade.max_steps`). Whether the shadow model is
    /// configured is the caller's check, as for the route.
    pub fn validate(&self) -> Result<(), RoutingError> {
        if let Some(c) = &self.cascade {
            if let Some(m) = c.max_steps
                && !(1..=8).contains(&m)
            {
                return Err(bad("routing.cascade.max_steps", "must be between 1 and 8"));
            }
            if let Some(x) = c.min_confidence
                && !(x.is_finite() && (0.0..=1.0).contains(&x))
            {
                return Err(bad("routing.cascade.min_confidence", "must be between 0 and 1"));
            }
            if let Some(f) = c.pass_rate_floor_bp
                && f > BP_WHOLE
            {
                return Err(bad(
                    "routing.cascade.pass_rate_floor_bp",
                    "must be between 0 and 10000",
                ));
            }
            if c.min_samples > 1_000_000 {
                return Err(bad("routing.cascade.min_samples", "must be at most 1000000"));
            }
        }
        if let Some(c) = &self.cache
            && !(1..=8760).contains(&c.ttl_hours)
        {
            return Err(bad("routing.cache.ttl_hours", "must be between 1 and 8760"));
        }
        if let Some(s) = &self.shadow {
            if s.model.is_empty() || s.model.len() > 64 {
                return Err(bad("routing.shadow.model", "must be 1-64 characters"));
            }
            if s.share_bp > BP_WHOLE {
                return Err(bad("routing.shadow.share_bp", "must be between 0 and 10000"));
            }
        }
        Ok(())
    }
}

/// A model's verdicts on one agent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassRate {
    pub tried: u64,
    pub passed: u64,
}

impl PassRate {
    /// Passed over tried, in basis points; `None` before any verdict.
    pub fn bp(self) -> Option<u32> {
        if self.tried == 0 {
            return None;
        }
        let bp = u128::from(self.passed.min(self.tried)) * u128::from(BP_WHOLE) / u128::from(self.tried);
        u32::try_from(bp).ok()
    }
}

impl Cascade {
    /// The models of `route` to try, in order: at most `max_steps`, without
    /// those whose pass rate (by `rate_of`) is known to be under the floor.
    /// The route's last model is never skipped, so a cascade always has a
    /// model to end on.
    pub fn steps<'r>(&self, route: &'r [String], rate_of: impl Fn(&str) -> PassRate) -> Vec<&'r String> {
        let Some((last, rest)) = route.split_last() else {
            return Vec::new();
        };
        let below_floor = |model: &str| {
            let rate = rate_of(model);
            match (self.pass_rate_floor_bp, rate.bp()) {
                (Some(floor), Some(bp)) => rate.tried >= u64::from(self.min_samples) && bp < floor,
                _ => false,
            }
        };
        let mut steps: Vec<&String> = rest.iter().filter(|m| !below_floor(m)).collect();
        steps.push(last);
        let max = self.max_steps.map_or(usize::MAX, |m| m.max(1) as usize);
        if steps.len() > max {
            // Keep the cheapest first steps and the strongest model last.
            steps.drain(max - 1..steps.len() - 1);
        }
        steps
    }

    /// Whether a step's verification sends the task to the next model: a
    /// rejection, or a pass on a judge less confident than the minimum. A
    /// pending decision (waiting for an external signal) never escalates.
    pub fn escalates(&self, decision: Decision, verdicts: &[VerifierVerdict]) -> bool {
        match decision {
            Decision::Fail => true,
            Decision::Pending => false,
            Decision::Pass => self
                .min_confidence
                .is_some_and(|min| verdicts.iter().any(|v| v.confidence.is_some_and(|c| c < min))),
        }
    }
}

impl ShadowPolicy {
    /// Whether the task drawn at `draw` (uniform in `[0, 1)`) is shadowed.
    pub fn picks(&self, draw: f64) -> bool {
        draw * f64::from(BP_WHOLE) < f64::from(self.share_bp)
    }
}

/// Whether a shadow student may be promoted: at least `min_samples`
/// verdicts each, and the student's pass rate no more than `margin_bp`
/// basis points under the teacher's. The error says which condition
/// failed, with the numbers.
pub fn promotion_check(
    student: PassRate,
    teacher: PassRate,
    margin_bp: u32,
    min_samples: u64,
) -> Result<(), String> {
    if student.tried < min_samples {
        return Err(format!(
            "the student has {} shadow verdicts; {min_samples} are needed",
            student.tried
        ));
    }
    if teacher.tried < min_samples {
        return Err(format!(
            "the teacher has {} verdicts; {min_samples} are needed",
            teacher.tried
        ));
    }
    let (s, t) = (student.bp().unwrap_or(0), teacher.bp().unwrap_or(0));
    if s.saturating_add(margin_bp) < t {
        return Err(format!(
            "the student passes {} and the teacher {}: more than {} apart",
            percent(s),
            percent(t),
            percent(margin_bp)
        ));
    }
    Ok(())
}

/// The route with `student` first (and nowhere else): the cascade then
/// tries it before the teacher models.
pub fn promoted_route(route: &[String], student: &str) -> Vec<String> {
    std::iter::once(student.to_owned())
        .chain(route.iter().filter(|m| *m != student).cloned())
        .collect()
}

/// Basis points as a percentage with two decimals: `12.34%`.
pub fn percent(bp: u32) -> String {
    format!("{}.{:02}%", bp / 100, bp % 100)
}

/// The cache key of a request: SHA-256 (hex) of the agent version and the
/// normalized subject and body (lower-cased, whitespace runs collapsed to
/// one space, trimmed), so trivially different copies of one ticket hit.
/// The customer's name and metadata are not part of it: the answer must
/// not depend on them to be served again, which is why the verifiers
/// still check every hit.
pub fn cache_key(agent_version: i32, input: &TaskInput) -> String {
    fn normalize(s: &str) -> String {
        s.split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ")
    }
    let mut h = Sha256::new();
    h.update(format!("v{agent_version}\n").as_bytes());
    h.update(normalize(&input.subject).as_bytes());
    h.update(b"\n");
    h.update(normalize(&input.body).as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    fn cascade() -> Cascade {
        Cascade {
            max_steps: None,
            min_confidence: None,
            pass_rate_floor_bp: None,
            min_samples: 20,
        }
    }

    #[test]
    fn steps_follow_the_route_within_max_steps() {
        let r = route(&["cheap", "mid", "frontier"]);
        let all = |_: &str| PassRate::default();
        assert_eq!(cascade().steps(&r, all), ["cheap", "mid", "frontier"]);
        let two = Cascade {
            max_steps: Some(2),
            ..cascade()
        };
        assert_eq!(two.steps(&r, all), ["cheap", "frontier"]);
        let one = Cascade {
            max_steps: Some(1),
            ..cascade()
        };
        assert_eq!(one.steps(&r, all), ["frontier"]);
    }

    #[test]
    fn a_model_under_the_floor_is_skipped_once_sampled_but_never_the_last() {
        let r = route(&["cheap", "frontier"]);
        let c = Cascade {
            pass_rate_floor_bp: Some(2_000),
            min_samples: 10,
            ..cascade()
        };
        let poor = |tried| move |_: &str| PassRate { tried, passed: 1 };
        assert_eq!(c.steps(&r, poor(9)), ["cheap", "frontier"], "too few samples");
        assert_eq!(c.steps(&r, poor(10)), ["frontier"], "10% < 20%");
        let good = |_: &str| PassRate { tried: 10, passed: 2 };
        assert_eq!(c.steps(&r, good), ["cheap", "frontier"], "20% is not under");
        let only = route(&["cheap"]);
        assert_eq!(c.steps(&only, poor(100)), ["cheap"]);
    }

    fn verdict(confidence: Option<f64>) -> VerifierVerdict {
        VerifierVerdict {
            verifier: "judge".into(),
            version: "judge/1".into(),
            decision: Decision::Pass,
            reason: "ok".into(),
            inputs_hash: "0".repeat(64),
            confidence,
        }
    }

    #[test]
    fn escalation_follows_the_verdict_and_the_judges_confidence() {
        let c = Cascade {
            min_confidence: Some(0.8),
            ..cascade()
        };
        assert!(c.escalates(Decision::Fail, &[]));
        assert!(!c.escalates(Decision::Pending, &[]));
        assert!(!c.escalates(Decision::Pass, &[verdict(Some(0.9))]));
        assert!(c.escalates(Decision::Pass, &[verdict(Some(0.5))]));
        assert!(!c.escalates(Decision::Pass, &[verdict(None)]));
        assert!(!cascade().escalates(Decision::Pass, &[verdict(Some(0.1))]));
    }

    #[test]
    fn pass_rates_are_basis_points() {
        assert_eq!(PassRate::default().bp(), None);
        assert_eq!(PassRate { tried: 3, passed: 1 }.bp(), Some(3_333));
        assert_eq!(PassRate { tried: 1, passed: 5 }.bp(), Some(10_000));
    }

    #[test]
    fn validation_names_the_field() {
        let p: RoutingPolicy = serde_json::from_str(r#"{"cascade": {"max_steps": 9}}"#).unwrap();
        assert_eq!(p.validate().unwrap_err().field, "routing.cascade.max_steps");
        let p: RoutingPolicy = serde_json::from_str(r#"{"cache": {"ttl_hours": 0}}"#).unwrap();
        assert_eq!(p.validate().unwrap_err().field, "routing.cache.ttl_hours");
        let p: RoutingPolicy =
            serde_json::from_str(r#"{"shadow": {"model": "s", "share_bp": 10001}}"#).unwrap();
        assert_eq!(p.validate().unwrap_err().field, "routing.shadow.share_bp");
        assert!(serde_json::from_str::<RoutingPolicy>(r#"{"cascade": {"steps": 1}}"#).is_err());
        assert!(RoutingPolicy::default().validate().is_ok());
    }

    #[test]
    fn cache_keys_ignore_case_and_spacing_but_not_the_version() {
        let a = TaskInput {
            subject: "Refund  for order 1042".into(),
            body: "Hello,\n  where is it?".into(),
            ..Default::default()
        };
        let b = TaskInput {
            subject: " refund for ORDER 1042".into(),
            body: "hello, where is it?".into(),
            ..Default::default()
        };
        assert_eq!(cache_key(1, &a), cache_key(1, &b));
        assert_ne!(cache_key(1, &a), cache_key(2, &a));
        let c = TaskInput {
            subject: "Refund for order 1043".into(),
            ..b.clone()
        };
        assert_ne!(cache_key(1, &b), cache_key(1, &c));
    }

    #[test]
    fn promotion_needs_samples_and_a_close_pass_rate() {
        let rate = |tried, passed| PassRate { tried, passed };
        assert!(promotion_check(rate(49, 49), rate(100, 90), 200, 50).is_err());
        assert!(promotion_check(rate(100, 88), rate(100, 90), 200, 50).is_ok());
        let far = promotion_check(rate(100, 87), rate(100, 90), 200, 50).unwrap_err();
        assert!(far.contains("87.00%") && far.contains("90.00%"), "{far}");
        assert!(promotion_check(rate(100, 95), rate(100, 90), 0, 50).is_ok());
        assert_eq!(
            promoted_route(&route(&["cheap", "student", "frontier"]), "student"),
            ["student", "cheap", "frontier"]
        );
    }

    #[test]
    fn shadow_share_is_a_fraction_of_draws() {
        let s = ShadowPolicy {
            model: "student".into(),
            share_bp: 2_500,
        };
        assert!(s.picks(0.0));
        assert!(s.picks(0.2499));
        assert!(!s.picks(0.25));
    }
}
