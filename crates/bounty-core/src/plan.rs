//! Plans and rating: how many compute units a resolved outcome costs, and
//! what those units cost in money.
//!
//! A plan prices in one of two ways:
//!
//! - **value**: a fixed number of CU per outcome type (`ticket.resolved`
//!   costs 1 CU), whatever the work took. The customer pays for results.
//! - **effort**: CU for the tokens each model used and for tool time. The
//!   customer pays for the work, but still only for resolved outcomes.
//!
//! Either way, an outcome that is not resolved costs 0 CU, always.
//!
//! [`rate`] is deterministic integer arithmetic and returns a
//! [`RatingReceipt`]: the plan and input it saw, every number it computed
//! and a one-line `formula` a customer can check by hand. The rules:
//!
//! - **value:** `cu = cu_per_outcome[outcome_type]`, else `default_cu`,
//!   else [`RatingError::UnknownOutcomeType`].
//! - **effort:** in milli-CU, `Σ ceil((prompt + completion) × rate / 10^6)`
//!   over the usage lines, where `rate` is the model's milli-CU per million
//!   tokens (the table's, else the default), plus
//!   `ceil(tool_ms × cu_per_tool_second / 1000)`. Each line rounds up on
//!   its own, so a line that used anything costs at least 0.001 CU.
//! - **included CU:** `included_applied = min(cu, max(0, included_cu −
//!   included_used))` and `billable_cu = cu − included_applied`.
//! - **amount:** `billable milli-CU × price micros / 1000`, rounded half up
//!   to the micro (every term is non-negative, so "half up" is "half away
//!   from zero").
//!
//! A number that does not fit `i64` is [`RatingError::Overflow`], never a
//! wrap-around or a panic.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::agent::OutcomeType;
use crate::compute::{ComputeUnits, MILLI_PER_CU};
use crate::money::{Currency, Money};

/// A price list.
///
/// ```json
/// {
///   "name": "default",
///   "kind": "value",
///   "cu_per_outcome": {"ticket.resolved": 1000},
///   "price_per_cu": {"micros": 1000000, "currency": "USD"},
///   "included_cu": 0
/// }
/// ```
///
/// CU amounts are milli-CU (`1000` is 1 CU). The kind's fields sit beside
/// the plan's own; an unknown field, or one of the other kind, is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    /// A label for people, 1-64 characters.
    pub name: String,
    /// How CU are counted.
    #[serde(flatten)]
    pub kind: PlanKind,
    /// The price of one whole CU; its currency is the plan's currency.
    /// `{"micros": 1000000, "currency": "USD"}`.
    #[schema(value_type = Object)]
    pub price_per_cu: Money,
    /// Milli-CU included free each calendar month.
    #[schema(value_type = i64)]
    pub included_cu: ComputeUnits,
    /// For an outcome worked on the account's own key (BYOK): a platform
    /// fee, instead of or on top of the CU above. Without it, BYOK
    /// outcomes are rated like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byok_fee: Option<ByokFee>,
    /// When the customer's disputes are accepted without an operator.
    /// Without it, every dispute waits for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disputes: Option<crate::dispute::DisputePolicy>,
    /// How calls through the OpenAI-compatible gateway that name no task
    /// (`Bounty-Task`) are paid for. Without it they are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayTerms>,
}

/// The gateway's terms: what happens to a call that names no task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayTerms {
    pub unattributed: Unattributed,
    /// `cost_plus`: the markup on the call's inference cost, in basis
    /// points (`2000` is +20%).
    #[serde(default)]
    pub markup_bp: u32,
}

/// The rule for a gateway call that names no task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unattributed {
    /// 400 `task_required`: every call must belong to a task.
    #[default]
    Refuse,
    /// Billed at cost plus `markup_bp`.
    CostPlus,
    /// Served and recorded in the operator's cost view only.
    Free,
}

impl Unattributed {
    pub fn as_str(self) -> &'static str {
        match self {
            Unattributed::Refuse => "refuse",
            Unattributed::CostPlus => "cost_plus",
            Unattributed::Free => "free",
        }
    }
}

impl GatewayTerms {
    /// Most markup a plan may set: +1000%.
    pub const MAX_MARKUP_BP: u32 = 100_000;

    /// What a customer pays for a cost-plus call that cost `cost`:
    /// `ceil(cost × (10000 + markup_bp) / 10000)`, saturating.
    pub fn cost_plus(&self, cost: Money) -> Money {
        let total = i128::from(cost.micros.max(0)) * (10_000 + i128::from(self.markup_bp));
        let micros = total / 10_000 + i128::from(total % 10_000 != 0);
        Money::from_micros(i64::try_from(micros).unwrap_or(i64::MAX), cost.currency)
    }
}

/// The platform fee of an outcome worked on the customer's own key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ByokFee {
    /// Milli-CU per resolved outcome.
    #[schema(value_type = i64)]
    pub cu: ComputeUnits,
    pub mode: ByokFeeMode,
}

/// Whether the BYOK fee replaces the plan's CU or adds to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ByokFeeMode {
    /// The fee is the outcome's whole price.
    Instead,
    /// The fee comes on top of the plan's CU.
    OnTop,
}

/// How a plan counts CU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlanKind {
    /// A fixed price per outcome type, whatever the work took.
    Value {
        /// Milli-CU per outcome type (`ticket.resolved`).
        #[schema(value_type = BTreeMap<String, i64>)]
        cu_per_outcome: BTreeMap<String, ComputeUnits>,
        /// Milli-CU for an outcome type not in the table; without it such
        /// an outcome cannot be rated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<i64>)]
        default_cu: Option<ComputeUnits>,
    },
    /// A price for the work: tokens and tool time.
    Effort {
        /// Milli-CU per million tokens (prompt plus completion), by model.
        #[serde(default)]
        #[schema(value_type = BTreeMap<String, i64>)]
        cu_per_million_tokens: BTreeMap<String, ComputeUnits>,
        /// Milli-CU per million tokens for a model not in the table.
        #[schema(value_type = i64)]
        default_cu_per_million_tokens: ComputeUnits,
        /// Milli-CU per second of tool time.
        #[schema(value_type = i64)]
        cu_per_tool_second: ComputeUnits,
    },
}

impl PlanKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PlanKind::Value { .. } => "value",
            PlanKind::Effort { .. } => "effort",
        }
    }
}

/// The tokens one model used for an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelUsage {
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What [`rate`] needs to know about one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RatingInput {
    #[schema(value_type = String, example = "ticket.resolved")]
    pub outcome_type: OutcomeType,
    /// Whether the outcome is resolved; if not, it costs 0 CU.
    pub resolved: bool,
    /// Tokens by model (effort plans).
    #[serde(default)]
    pub usage: Vec<ModelUsage>,
    /// Milliseconds of tool time (effort plans).
    #[serde(default)]
    pub tool_ms: u64,
    /// Milli-CU already counted against the plan's included CU this
    /// calendar month; never negative.
    #[serde(default)]
    #[schema(value_type = i64)]
    pub included_used: ComputeUnits,
    /// The outcome was worked on the account's own key (BYOK).
    #[serde(default)]
    pub byok: bool,
}

/// The result of rating one outcome, with everything needed to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RatingReceipt {
    /// The plan as it was when rated.
    pub plan: Plan,
    pub input: RatingInput,
    /// The computation in one line, with its numbers.
    pub formula: String,
    /// Milli-CU the outcome cost.
    #[schema(value_type = i64)]
    pub cu: ComputeUnits,
    /// Milli-CU of `cu` covered by the plan's included CU.
    #[schema(value_type = i64)]
    pub included_applied: ComputeUnits,
    /// `cu − included_applied`: the milli-CU charged for.
    #[schema(value_type = i64)]
    pub billable_cu: ComputeUnits,
    /// What `billable_cu` costs, in the plan's currency.
    #[schema(value_type = Object)]
    pub amount: Money,
}

/// Why an outcome could not be rated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    /// A value plan with no price for this outcome type and no default.
    #[error("the plan has no price for outcome type {0:?} and no default_cu")]
    UnknownOutcomeType(String),
    /// A number did not fit in i64.
    #[error("rating overflowed")]
    Overflow,
    /// The plan fails [`Plan::validate`].
    #[error("invalid plan: {field}: {message}")]
    InvalidPlan { field: String, message: String },
    /// `included_used` is negative.
    #[error("included_used must not be negative")]
    NegativeIncludedUsed,
}

impl Plan {
    /// Longest plan name, in characters.
    pub const MAX_NAME_CHARS: usize = 64;

    /// The plan a new account gets: 1 CU per `ticket.resolved` at
    /// 1.00 USD per CU, nothing included.
    pub fn default_value_plan() -> Plan {
        Plan {
            name: "default".to_owned(),
            kind: PlanKind::Value {
                cu_per_outcome: BTreeMap::from([(
                    "ticket.resolved".to_owned(),
                    ComputeUnits::from_milli(MILLI_PER_CU),
                )]),
                default_cu: None,
            },
            price_per_cu: Money::from_micros(1_000_000, Currency::USD),
            included_cu: ComputeUnits::ZERO,
            byok_fee: None,
            disputes: None,
            gateway: None,
        }
    }

    /// The plan's currency.
    pub fn currency(&self) -> Currency {
        self.price_per_cu.currency
    }

    /// The most one resolved outcome of `outcome_type` can cost, for
    /// holding credit before the work: the table's value (or the default)
    /// for a value plan. An effort plan has no bound, so `None`; as does a
    /// value plan that cannot rate the type.
    pub fn reserve_cu(&self, outcome_type: &str) -> Option<ComputeUnits> {
        match &self.kind {
            PlanKind::Value {
                cu_per_outcome,
                default_cu,
            } => cu_per_outcome.get(outcome_type).copied().or(*default_cu),
            PlanKind::Effort { .. } => None,
        }
    }

    /// What `billable` milli-CU cost at this plan's price, rounded half up
    /// to the micro. `billable` and the price must not be negative (a
    /// valid plan's price never is).
    pub fn amount_for(&self, billable: ComputeUnits) -> Result<Money, RatingError> {
        let product = i128::from(billable.milli()) * i128::from(self.price_per_cu.micros);
        let milli = i128::from(MILLI_PER_CU);
        let micros = (product + milli / 2).div_euclid(milli);
        let micros = i64::try_from(micros).map_err(|_| RatingError::Overflow)?;
        Ok(Money::from_micros(micros, self.currency()))
    }

    /// Checks the plan; the error names the field (`name`,
    /// `cu_per_outcome["ticket.resolved"]`, …).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let field = |name: String, msg: &str| Err((name, msg.to_owned()));
        let negative = |cu: ComputeUnits| cu.milli() < 0;
        let chars = self.name.chars().count();
        if self.name.trim().is_empty() || chars > Self::MAX_NAME_CHARS {
            return field("name".into(), "must be 1-64 characters, not all blank");
        }
        if self.price_per_cu.micros < 0 {
            return field("price_per_cu".into(), "must not be negative");
        }
        if negative(self.included_cu) {
            return field("included_cu".into(), "must not be negative");
        }
        if let Some(Err((name, msg))) = self.disputes.as_ref().map(|d| d.validate()) {
            return field(format!("disputes.{name}"), msg);
        }
        if self.byok_fee.is_some_and(|f| negative(f.cu)) {
            return field("byok_fee.cu".into(), "must not be negative");
        }
        if self
            .gateway
            .is_some_and(|g| g.markup_bp > GatewayTerms::MAX_MARKUP_BP)
        {
            return field("gateway.markup_bp".into(), "must be at most 100000 (+1000%)");
        }
        match &self.kind {
            PlanKind::Value {
                cu_per_outcome,
                default_cu,
            } => {
                if cu_per_outcome.is_empty() && default_cu.is_none() {
                    return field(
                        "cu_per_outcome".into(),
                        "must price at least one outcome type, or default_cu must be set",
                    );
                }
                for (outcome_type, cu) in cu_per_outcome {
                    let name = format!("cu_per_outcome[{outcome_type:?}]");
                    if OutcomeType::parse(outcome_type).is_err() {
                        return field(
                            name,
                            "keys must be dotted lower-case words of a-z 0-9 - _, like `ticket.resolved`",
                        );
                    }
                    if negative(*cu) {
                        return field(name, "must not be negative");
                    }
                }
                if default_cu.is_some_and(negative) {
                    return field("default_cu".into(), "must not be negative");
                }
            }
            PlanKind::Effort {
                cu_per_million_tokens,
                default_cu_per_million_tokens,
                cu_per_tool_second,
            } => {
                for (model, cu) in cu_per_million_tokens {
                    let name = format!("cu_per_million_tokens[{model:?}]");
                    if model.trim().is_empty() {
                        return field(name, "model names must not be empty");
                    }
                    if negative(*cu) {
                        return field(name, "must not be negative");
                    }
                }
                if negative(*default_cu_per_million_tokens) {
                    return field("default_cu_per_million_tokens".into(), "must not be negative");
                }
                if negative(*cu_per_tool_second) {
                    return field("cu_per_tool_second".into(), "must not be negative");
                }
            }
        }
        Ok(())
    }
}

/// Rates one outcome under `plan`. See the module docs for the rules.
pub fn rate(plan: &Plan, input: &RatingInput) -> Result<RatingReceipt, RatingError> {
    plan.validate()
        .map_err(|(field, message)| RatingError::InvalidPlan { field, message })?;
    if input.included_used.milli() < 0 {
        return Err(RatingError::NegativeIncludedUsed);
    }
    let receipt = |formula: String, cu, included_applied, billable_cu, amount| RatingReceipt {
        plan: plan.clone(),
        input: input.clone(),
        formula,
        cu,
        included_applied,
        billable_cu,
        amount,
    };
    if !input.resolved {
        let zero = ComputeUnits::ZERO;
        let formula = "not resolved: 0 CU, always".to_owned();
        return Ok(receipt(formula, zero, zero, zero, Money::zero(plan.currency())));
    }

    let (cu, formula) = match &plan.kind {
        PlanKind::Value {
            cu_per_outcome,
            default_cu,
        } => {
            let (cu, note) = match (cu_per_outcome.get(input.outcome_type.as_str()), default_cu) {
                (Some(cu), _) => (*cu, ""),
                (None, Some(cu)) => (*cu, " (default)"),
                (None, None) => return Err(RatingError::UnknownOutcomeType(input.outcome_type.to_string())),
            };
            (cu, format!("value plan: {} = {cu}{note}", input.outcome_type))
        }
        PlanKind::Effort {
            cu_per_million_tokens,
            default_cu_per_million_tokens,
            cu_per_tool_second,
        } => effort_cu(
            input,
            cu_per_million_tokens,
            *default_cu_per_million_tokens,
            *cu_per_tool_second,
        )?,
    };

    let (cu, mut formula) = match (plan.byok_fee, input.byok) {
        (Some(fee), true) => match fee.mode {
            ByokFeeMode::Instead => (
                fee.cu,
                format!("BYOK platform fee {} (instead of {formula})", fee.cu),
            ),
            ByokFeeMode::OnTop => (
                cu.checked_add(fee.cu).ok_or(RatingError::Overflow)?,
                format!("{formula}; + BYOK platform fee {}", fee.cu),
            ),
        },
        _ => (cu, formula),
    };
    // Both are non-negative (validated), so the subtraction cannot overflow.
    let remaining = plan
        .included_cu
        .milli()
        .saturating_sub(input.included_used.milli())
        .max(0);
    let included_applied = ComputeUnits::from_milli(cu.milli().min(remaining));
    let billable_cu = cu.checked_sub(included_applied).ok_or(RatingError::Overflow)?;
    let amount = plan.amount_for(billable_cu)?;
    let _ = write!(
        formula,
        "; included {included_applied}; billable {billable_cu} × {}/CU = {amount}",
        plan.price_per_cu
    );
    Ok(receipt(formula, cu, included_applied, billable_cu, amount))
}

/// An effort plan's CU for `input`, with its formula: each model's tokens
/// at its rate per million, plus tool time at the rate per second.
fn effort_cu(
    input: &RatingInput,
    cu_per_million_tokens: &BTreeMap<String, ComputeUnits>,
    default_cu_per_million_tokens: ComputeUnits,
    cu_per_tool_second: ComputeUnits,
) -> Result<(ComputeUnits, String), RatingError> {
    let mut formula = "effort plan:".to_owned();
    let mut total: i128 = 0;
    for usage in &input.usage {
        let rate = cu_per_million_tokens
            .get(&usage.model)
            .copied()
            .unwrap_or(default_cu_per_million_tokens);
        let tokens = u128::from(usage.prompt_tokens) + u128::from(usage.completion_tokens);
        let line = scaled_ceil(tokens, rate, 1_000_000)?;
        total = total
            .checked_add(i128::from(line.milli()))
            .ok_or(RatingError::Overflow)?;
        let _ = write!(
            formula,
            " {} {tokens} tokens × {rate}/Mtok = {line};",
            usage.model
        );
    }
    let tool = scaled_ceil(u128::from(input.tool_ms), cu_per_tool_second, 1_000)?;
    total = total
        .checked_add(i128::from(tool.milli()))
        .ok_or(RatingError::Overflow)?;
    let cu = ComputeUnits::from_milli(i64::try_from(total).map_err(|_| RatingError::Overflow)?);
    let _ = write!(
        formula,
        " tools {} ms × {cu_per_tool_second}/s = {tool}; total {cu}",
        input.tool_ms
    );
    Ok((cu, formula))
}

/// `ceil(quantity × rate / per)` in milli-CU, for a non-negative `rate`.
fn scaled_ceil(quantity: u128, rate: ComputeUnits, per: u128) -> Result<ComputeUnits, RatingError> {
    let rate = u128::try_from(rate.milli()).map_err(|_| RatingError::Overflow)?;
    let milli = quantity
        .checked_mul(rate)
        .ok_or(RatingError::Overflow)?
        .div_ceil(per);
    let milli = i64::try_from(milli).map_err(|_| RatingError::Overflow)?;
    Ok(ComputeUnits::from_milli(milli))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cu(milli: i64) -> ComputeUnits {
        ComputeUnits::from_milli(milli)
    }

    fn usd(micros: i64) -> Money {
        Money::from_micros(micros, Currency::USD)
    }

    fn resolved(outcome_type: &str) -> RatingInput {
        RatingInput {
            outcome_type: OutcomeType::parse(outcome_type).expect("an outcome type"),
            resolved: true,
            usage: Vec::new(),
            tool_ms: 0,
            included_used: ComputeUnits::ZERO,
            byok: false,
        }
    }

    fn effort_plan() -> Plan {
        Plan {
            name: "effort".into(),
            kind: PlanKind::Effort {
                cu_per_million_tokens: BTreeMap::from([("big".to_owned(), cu(10_000))]),
                default_cu_per_million_tokens: cu(1_000),
                cu_per_tool_second: cu(500),
            },
            price_per_cu: usd(2_000_000),
            included_cu: ComputeUnits::ZERO,
            byok_fee: None,
            disputes: None,
            gateway: None,
        }
    }

    #[test]
    fn default_plan_charges_one_cu_per_ticket() {
        let plan = Plan::default_value_plan();
        assert!(plan.validate().is_ok());
        let r = rate(&plan, &resolved("ticket.resolved")).unwrap();
        assert_eq!(
            (r.cu, r.included_applied, r.billable_cu, r.amount),
            (cu(1000), cu(0), cu(1000), usd(1_000_000))
        );
        assert_eq!(
            r.formula,
            "value plan: ticket.resolved = 1.000 CU; included 0.000 CU; \
             billable 1.000 CU × 1.000000 USD/CU = 1.000000 USD"
        );
        assert_eq!(plan.reserve_cu("ticket.resolved"), Some(cu(1000)));
        assert_eq!(plan.reserve_cu("lead"), None);
        assert_eq!(
            rate(&plan, &resolved("lead")),
            Err(RatingError::UnknownOutcomeType("lead".into()))
        );
    }

    #[test]
    fn not_resolved_costs_nothing() {
        for plan in [Plan::default_value_plan(), effort_plan()] {
            let input = RatingInput {
                resolved: false,
                tool_ms: 60_000,
                ..resolved("no.such.type")
            };
            let r = rate(&plan, &input).unwrap();
            assert_eq!((r.cu, r.billable_cu, r.amount), (cu(0), cu(0), usd(0)));
            assert_eq!(r.formula, "not resolved: 0 CU, always");
        }
    }

    #[test]
    fn value_plan_falls_back_to_the_default() {
        let mut plan = Plan::default_value_plan();
        plan.kind = PlanKind::Value {
            cu_per_outcome: BTreeMap::new(),
            default_cu: Some(cu(2_500)),
        };
        let r = rate(&plan, &resolved("lead")).unwrap();
        assert_eq!((r.cu, r.amount), (cu(2_500), usd(2_500_000)));
        assert!(
            r.formula.starts_with("value plan: lead = 2.500 CU (default);"),
            "{}",
            r.formula
        );
        assert_eq!(plan.reserve_cu("anything"), Some(cu(2_500)));
    }

    #[test]
    fn effort_plan_rounds_each_line_up() {
        let plan = effort_plan();
        let input = RatingInput {
            usage: vec![
                // 150 tokens × 10 CU/Mtok = 0.0015 CU → 0.002.
                ModelUsage {
                    model: "big".into(),
                    prompt_tokens: 100,
                    completion_tokens: 50,
                },
                // 2M tokens × 1 CU/Mtok (default) = 2 CU exactly.
                ModelUsage {
                    model: "small".into(),
                    prompt_tokens: 1_500_000,
                    completion_tokens: 500_000,
                },
            ],
            // 1.5 s × 0.5 CU/s = 0.75 CU.
            tool_ms: 1_500,
            ..resolved("ticket.resolved")
        };
        let r = rate(&plan, &input).unwrap();
        assert_eq!(r.cu, cu(2 + 2_000 + 750));
        assert_eq!(r.amount, usd(5_504_000));
        assert_eq!(
            r.formula,
            "effort plan: big 150 tokens × 10.000 CU/Mtok = 0.002 CU; \
             small 2000000 tokens × 1.000 CU/Mtok = 2.000 CU; \
             tools 1500 ms × 0.500 CU/s = 0.750 CU; total 2.752 CU; \
             included 0.000 CU; billable 2.752 CU × 2.000000 USD/CU = 5.504000 USD"
        );
        assert_eq!(plan.reserve_cu("ticket.resolved"), None);
    }

    #[test]
    fn included_cu_is_applied_first() {
        let mut plan = Plan::default_value_plan();
        plan.included_cu = cu(1_500);
        let mut input = resolved("ticket.resolved");
        input.included_used = cu(1_000);
        let r = rate(&plan, &input).unwrap();
        assert_eq!(
            (r.included_applied, r.billable_cu, r.amount),
            (cu(500), cu(500), usd(500_000))
        );
        input.included_used = cu(9_000);
        let r = rate(&plan, &input).unwrap();
        assert_eq!((r.included_applied, r.billable_cu), (cu(0), cu(1_000)));
        input.included_used = cu(-1);
        assert_eq!(rate(&plan, &input), Err(RatingError::NegativeIncludedUsed));
    }

    #[test]
    fn amounts_round_half_up_to_the_micro() {
        let mut plan = Plan::default_value_plan();
        plan.price_per_cu = usd(1_500); // 0.0015 USD per CU
        assert_eq!(plan.amount_for(cu(1)).unwrap(), usd(2)); // 1.5 micros → 2
        assert_eq!(plan.amount_for(cu(333)).unwrap(), usd(500)); // 499.5 → 500
        assert_eq!(plan.amount_for(cu(331)).unwrap(), usd(497)); // 496.5 → 497
        assert_eq!(plan.amount_for(cu(3)).unwrap(), usd(5)); // 4.5 → 5
        plan.price_per_cu = usd(1_333);
        assert_eq!(plan.amount_for(cu(1)).unwrap(), usd(1)); // 1.333 → 1
        plan.price_per_cu = usd(i64::MAX);
        assert_eq!(plan.amount_for(cu(i64::MAX)), Err(RatingError::Overflow));
    }

    #[test]
    fn validation_names_the_field() {
        let mut plan = Plan::default_value_plan();
        plan.name = " ".into();
        assert_eq!(plan.validate().unwrap_err().0, "name");
        plan = Plan::default_value_plan();
        plan.price_per_cu = usd(-1);
        assert_eq!(plan.validate().unwrap_err().0, "price_per_cu");
        plan = Plan::default_value_plan();
        plan.kind = PlanKind::Value {
            cu_per_outcome: BTreeMap::from([("Ticket".to_owned(), cu(1))]),
            default_cu: None,
        };
        assert_eq!(plan.validate().unwrap_err().0, r#"cu_per_outcome["Ticket"]"#);
        plan.kind = PlanKind::Value {
            cu_per_outcome: BTreeMap::new(),
            default_cu: None,
        };
        assert_eq!(plan.validate().unwrap_err().0, "cu_per_outcome");
        plan = effort_plan();
        if let PlanKind::Effort {
            cu_per_tool_second, ..
        } = &mut plan.kind
        {
            *cu_per_tool_second = cu(-1);
        }
        assert_eq!(plan.validate().unwrap_err().0, "cu_per_tool_second");
        assert!(matches!(
            rate(&plan, &resolved("x")),
            Err(RatingError::InvalidPlan { field, .. }) if field == "cu_per_tool_second"
        ));
    }

    #[test]
    fn serde_shape_is_flat_and_stable() {
        let json = serde_json::to_value(Plan::default_value_plan()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "default",
                "kind": "value",
                "cu_per_outcome": {"ticket.resolved": 1000},
                "price_per_cu": {"micros": 1_000_000, "currency": "USD"},
                "included_cu": 0
            })
        );
        let back: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(back, Plan::default_value_plan());
        let effort = serde_json::to_value(effort_plan()).unwrap();
        assert_eq!(effort["kind"], "effort");
        assert_eq!(serde_json::from_value::<Plan>(effort).unwrap(), effort_plan());
        assert!(
            serde_json::from_str::<Plan>(
                r#"{"name":"x","kind":"magic","price_per_cu":{"micros":1,"currency":"USD"},"included_cu":0}"#
            )
            .is_err()
        );
        // A typo, or a field of the other kind, is refused, not ignored.
        let mut typo = serde_json::to_value(Plan::default_value_plan()).unwrap();
        typo["cu_per_tool_second"] = serde_json::json!(5);
        let err = serde_json::from_value::<Plan>(typo).unwrap_err().to_string();
        assert!(err.contains("unknown field `cu_per_tool_second`"), "{err}");
    }

    #[test]
    fn huge_effort_overflows_instead_of_panicking() {
        let mut plan = effort_plan();
        if let PlanKind::Effort {
            default_cu_per_million_tokens,
            ..
        } = &mut plan.kind
        {
            *default_cu_per_million_tokens = cu(i64::MAX);
        }
        let mut input = resolved("ticket.resolved");
        input.usage = vec![ModelUsage {
            model: "m".into(),
            prompt_tokens: u64::MAX,
            completion_tokens: u64::MAX,
        }];
        assert_eq!(rate(&plan, &input), Err(RatingError::Overflow));
    }

    fn any_cu() -> impl Strategy<Value = ComputeUnits> {
        prop_oneof![0i64..10_000_000, 0i64..=i64::MAX].prop_map(ComputeUnits::from_milli)
    }

    fn any_plan() -> impl Strategy<Value = Plan> {
        let value = (
            proptest::collection::btree_map(
                prop_oneof![Just("ticket.resolved"), Just("lead")],
                any_cu(),
                0..2,
            ),
            proptest::option::of(any_cu()),
        )
            .prop_map(|(table, default_cu)| PlanKind::Value {
                cu_per_outcome: table.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                default_cu,
            });
        let effort = (
            proptest::collection::btree_map(prop_oneof![Just("big"), Just("small")], any_cu(), 0..2),
            any_cu(),
            any_cu(),
        )
            .prop_map(|(table, default_rate, tool)| PlanKind::Effort {
                cu_per_million_tokens: table.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                default_cu_per_million_tokens: default_rate,
                cu_per_tool_second: tool,
            });
        let price = prop_oneof![0i64..10_000_000, 0i64..=i64::MAX];
        (prop_oneof![value, effort], price, any_cu()).prop_map(|(kind, micros, included_cu)| Plan {
            name: "p".into(),
            kind,
            price_per_cu: usd(micros),
            included_cu,
            byok_fee: None,
            disputes: None,
            gateway: None,
        })
    }

    fn any_input() -> impl Strategy<Value = RatingInput> {
        let usage = (
            prop_oneof![Just("big"), Just("small"), Just("other")],
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(model, prompt_tokens, completion_tokens)| ModelUsage {
                model: model.into(),
                prompt_tokens,
                completion_tokens,
            });
        (
            prop_oneof![Just("ticket.resolved"), Just("lead"), Just("other")],
            any::<bool>(),
            proptest::collection::vec(usage, 0..4),
            any::<u64>(),
            any::<i64>(),
        )
            .prop_map(|(outcome_type, resolved, usage, tool_ms, used)| RatingInput {
                outcome_type: OutcomeType::parse(outcome_type).expect("an outcome type"),
                resolved,
                usage,
                tool_ms,
                included_used: cu(used),
                byok: false,
            })
    }

    proptest! {
        /// Rating never panics, is deterministic, and its receipt adds up.
        #[test]
        fn receipts_are_deterministic_and_add_up(plan in any_plan(), input in any_input()) {
            let first = rate(&plan, &input);
            prop_assert_eq!(&first, &rate(&plan, &input));
            let Ok(r) = first else { return Ok(()) };
            prop_assert_eq!(&r.plan, &plan);
            prop_assert_eq!(&r.input, &input);
            if !input.resolved {
                prop_assert_eq!((r.cu, r.billable_cu, r.amount), (ComputeUnits::ZERO, ComputeUnits::ZERO, usd(0)));
            }
            prop_assert!(r.included_applied.milli() >= 0 && r.billable_cu.milli() >= 0);
            prop_assert_eq!(r.billable_cu.checked_add(r.included_applied), Some(r.cu));
            prop_assert!(r.amount.micros >= 0);
            prop_assert_eq!(r.amount.currency, plan.currency());
            prop_assert_eq!(Ok(r.amount), plan.amount_for(r.billable_cu));
        }

        /// More billable CU never costs less.
        #[test]
        fn amount_is_monotone(plan in any_plan(), a in any_cu(), b in any_cu()) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            if let (Ok(x), Ok(y)) = (plan.amount_for(lo), plan.amount_for(hi)) {
                prop_assert!(x.micros >= 0 && x.micros <= y.micros);
            } else {
                // Only the larger can overflow, and then the smaller may too.
                prop_assert!(plan.amount_for(hi).is_err());
            }
        }
    }
}
