//! The ledger's rules, as pure decisions: which transfers a charge makes,
//! and which a reversal makes. The store writes what these functions
//! decide; it never decides itself.
//!
//! The ledger is double-entry in two units, milli-CU (`mCU`) and the
//! plan's currency (micros). A resolved outcome of `cu` CU moves:
//!
//! | kind | debit → credit | amount |
//! |---|---|---|
//! | `included` | `allowance` → `usage` | the CU covered by the plan's monthly allowance |
//! | `credit_draw` | `credits` → `usage` | billable CU paid from prepaid credits (never below zero) |
//! | `charge` | `metered` → `usage` | billable CU left: what is metered to Stripe |
//! | `charge_money` | `receivable` → `revenue` | `charge` CU × price, in money |
//!
//! One more money transfer bills no outcome: `cost_plus` (`receivable` →
//! `revenue`), the sum of a batch of gateway calls made without a task on a
//! plan whose gateway terms bill them at cost plus a markup. It names no
//! outcome; the calls it bills name it (`gateway_calls.billed_transfer_id`).
//!
//! A reversal adds, for each transfer, one the other way (`<kind>_reversal`,
//! referencing the original). Credit grants move `grants` → `credits`.
//! Zero amounts are never written: every transfer moves a positive amount
//! between two different accounts, which the database checks again.

use std::fmt;
use std::str::FromStr;

use crate::compute::ComputeUnits;
use crate::money::Money;
use crate::plan::RatingReceipt;

crate::stored_enum! {
    /// One of an account's ledger accounts (a balance is a sum of transfers).
    pub enum LedgerAccount("ledger account") {
        /// The plan's monthly included CU, drawn by `included`.
        Allowance = "allowance",
        /// Where every CU an outcome cost lands.
        Usage = "usage",
        /// Prepaid CU.
        Credits = "credits",
        /// CU metered to Stripe.
        Metered = "metered",
        /// Money the customer owes for metered CU.
        Receivable = "receivable",
        /// Money earned.
        Revenue = "revenue",
        /// Where prepaid CU come from.
        Grants = "grants",
    }
}

/// Not a transfer kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a ledger {1}")]
pub struct BadLedgerName(pub String, pub &'static str);

/// What a transfer is for. A reversal is its original's kind, reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransferKind {
    /// CU covered by the plan's allowance.
    Included,
    /// Billable CU paid from credits.
    CreditDraw,
    /// Billable CU metered to Stripe.
    Charge,
    /// The money of `Charge`.
    ChargeMoney,
    /// Prepaid CU granted.
    CreditGrant,
    /// Gateway calls billed at cost plus the plan's markup, in money.
    CostPlus,
    /// The reversal of a transfer of the inner kind.
    Reversal(BaseKind),
}

/// The kinds that can be reversed: every kind but a reversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BaseKind {
    Included,
    CreditDraw,
    Charge,
    ChargeMoney,
    CreditGrant,
    CostPlus,
}

impl BaseKind {
    const ALL: [BaseKind; 6] = [
        BaseKind::Included,
        BaseKind::CreditDraw,
        BaseKind::Charge,
        BaseKind::ChargeMoney,
        BaseKind::CreditGrant,
        BaseKind::CostPlus,
    ];

    /// The stored name of a transfer of this kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            BaseKind::Included => "included",
            BaseKind::CreditDraw => "credit_draw",
            BaseKind::Charge => "charge",
            BaseKind::ChargeMoney => "charge_money",
            BaseKind::CreditGrant => "credit_grant",
            BaseKind::CostPlus => "cost_plus",
        }
    }

    /// The stored name of this kind's reversal.
    pub const fn reversal_str(self) -> &'static str {
        match self {
            BaseKind::Included => "included_reversal",
            BaseKind::CreditDraw => "credit_draw_reversal",
            BaseKind::Charge => "charge_reversal",
            BaseKind::ChargeMoney => "charge_money_reversal",
            BaseKind::CreditGrant => "credit_grant_reversal",
            BaseKind::CostPlus => "cost_plus_reversal",
        }
    }
}

impl TransferKind {
    /// The stored name: `charge`, `charge_reversal`, ….
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferKind::Reversal(base) => base.reversal_str(),
            other => match other.base() {
                Some(base) => base.as_str(),
                None => "",
            },
        }
    }

    /// The kind itself, or `None` for a reversal.
    pub const fn base(self) -> Option<BaseKind> {
        match self {
            TransferKind::Included => Some(BaseKind::Included),
            TransferKind::CreditDraw => Some(BaseKind::CreditDraw),
            TransferKind::Charge => Some(BaseKind::Charge),
            TransferKind::ChargeMoney => Some(BaseKind::ChargeMoney),
            TransferKind::CreditGrant => Some(BaseKind::CreditGrant),
            TransferKind::CostPlus => Some(BaseKind::CostPlus),
            TransferKind::Reversal(_) => None,
        }
    }

    /// The kind of this transfer's reversal; `None` for a reversal (which
    /// is never reversed again).
    pub const fn reversed(self) -> Option<TransferKind> {
        match self.base() {
            Some(base) => Some(TransferKind::Reversal(base)),
            None => None,
        }
    }
}

impl fmt::Display for TransferKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransferKind {
    type Err = BadLedgerName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        for base in BaseKind::ALL {
            if s == base.as_str() {
                return Ok(match base {
                    BaseKind::Included => TransferKind::Included,
                    BaseKind::CreditDraw => TransferKind::CreditDraw,
                    BaseKind::Charge => TransferKind::Charge,
                    BaseKind::ChargeMoney => TransferKind::ChargeMoney,
                    BaseKind::CreditGrant => TransferKind::CreditGrant,
                    BaseKind::CostPlus => TransferKind::CostPlus,
                });
            }
            if s == base.reversal_str() {
                return Ok(TransferKind::Reversal(base));
            }
        }
        Err(BadLedgerName(s.to_owned(), "transfer kind"))
    }
}

/// The unit of milli-CU transfers, as stored.
pub const UNIT_CU: &str = "mCU";

/// What a transfer is counted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferUnit {
    /// Milli compute units.
    MilliCu,
    /// Micros of an ISO currency (`USD`).
    Currency(String),
}

impl TransferUnit {
    /// The unit a stored form names: `mCU`, else a currency code.
    pub fn from_stored(s: &str) -> TransferUnit {
        if s == UNIT_CU {
            TransferUnit::MilliCu
        } else {
            TransferUnit::Currency(s.to_owned())
        }
    }

    /// The stored form: `mCU` or the currency code.
    pub fn as_str(&self) -> &str {
        match self {
            TransferUnit::MilliCu => UNIT_CU,
            TransferUnit::Currency(c) => c,
        }
    }
}

/// A transfer to write: the decision, without ids or times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferSpec {
    pub debit: LedgerAccount,
    pub credit: LedgerAccount,
    /// Positive, in `unit`.
    pub amount: i64,
    pub unit: TransferUnit,
    pub kind: TransferKind,
}

/// Balances a charge depends on, read under the account's billing lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeBalances {
    /// Prepaid CU left (milli); a negative balance counts as none.
    pub credits: ComputeUnits,
}

/// A charge that cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The money of the metered CU does not fit in i64 micros.
    #[error("a charge overflows i64 micros")]
    Overflow,
    /// A receipt whose parts do not add up (`included + billable ≠ cu`).
    #[error("the rating receipt does not add up: {0}")]
    Inconsistent(String),
}

/// Money for `cu` at `price_micros` per whole CU, rounded half away from
/// zero.
pub fn price_of(cu: ComputeUnits, price_micros: i64) -> Result<i64, LedgerError> {
    let v = i128::from(cu.milli()) * i128::from(price_micros);
    let rounded = if v >= 0 {
        (v + 500) / 1000
    } else {
        (v - 500) / 1000
    };
    i64::try_from(rounded).map_err(|_| LedgerError::Overflow)
}

/// The transfers that charge a resolved outcome rated as `receipt`: its
/// included CU, then billable CU from credits as far as they go, then the
/// rest metered, with its money at `price` per CU. Zero parts are left
/// out, so an outcome covered by its allowance writes one transfer.
pub fn plan_charge(
    receipt: &RatingReceipt,
    balances: ChargeBalances,
    price: Money,
) -> Result<Vec<TransferSpec>, LedgerError> {
    let included = receipt.included_applied.milli();
    let billable = receipt.billable_cu.milli();
    if included < 0 || billable < 0 || included.checked_add(billable) != Some(receipt.cu.milli()) {
        return Err(LedgerError::Inconsistent(format!(
            "cu {} is not included {included} + billable {billable}",
            receipt.cu.milli()
        )));
    }
    let draw = billable.min(balances.credits.milli().max(0));
    let metered = billable - draw;
    let money = price_of(ComputeUnits::from_milli(metered), price.micros)?;
    let cu = |debit, amount, kind| TransferSpec {
        debit,
        credit: LedgerAccount::Usage,
        amount,
        unit: TransferUnit::MilliCu,
        kind,
    };
    let all = [
        cu(LedgerAccount::Allowance, included, TransferKind::Included),
        cu(LedgerAccount::Credits, draw, TransferKind::CreditDraw),
        cu(LedgerAccount::Metered, metered, TransferKind::Charge),
        TransferSpec {
            debit: LedgerAccount::Receivable,
            credit: LedgerAccount::Revenue,
            amount: money,
            unit: TransferUnit::Currency(price.currency.to_string()),
            kind: TransferKind::ChargeMoney,
        },
    ];
    Ok(all.into_iter().filter(|t| t.amount > 0).collect())
}

/// The transfer that bills gateway calls at cost plus markup: their
/// charges' sum, receivable → revenue. `None` when there is nothing to
/// bill (zero is never written).
pub fn plan_cost_plus(total: Money) -> Option<TransferSpec> {
    (total.micros > 0).then(|| TransferSpec {
        debit: LedgerAccount::Receivable,
        credit: LedgerAccount::Revenue,
        amount: total.micros,
        unit: TransferUnit::Currency(total.currency.to_string()),
        kind: TransferKind::CostPlus,
    })
}

/// The transfers that reverse `originals` (an outcome's transfers not yet
/// reversed): each the other way, in the same unit and amount, of the
/// reversed kind. A reversal among them is an error: it is final.
pub fn plan_reversal(originals: &[TransferSpec]) -> Result<Vec<TransferSpec>, LedgerError> {
    originals
        .iter()
        .map(|t| {
            let kind = t
                .kind
                .reversed()
                .ok_or_else(|| LedgerError::Inconsistent(format!("{} cannot be reversed", t.kind)))?;
            Ok(TransferSpec {
                debit: t.credit,
                credit: t.debit,
                amount: t.amount,
                unit: t.unit.clone(),
                kind,
            })
        })
        .collect()
}

/// The cap-alert thresholds (percents of `cap`) that spend crossed going
/// from `before` to `after`, each once: the ones at or under `after` and
/// above `before`.
pub fn alerts_crossed(cap: i64, percents: &[u32], before: i64, after: i64) -> Vec<u32> {
    if cap <= 0 {
        return Vec::new();
    }
    percents
        .iter()
        .copied()
        .filter(|&pct| {
            let line = i128::from(cap) * i128::from(pct) / 100;
            i128::from(before) < line && i128::from(after) >= line
        })
        .collect()
}

/// Whether a task that would hold `reserve` micros fits under a monthly
/// `cap` that `committed` micros (charged this month plus held for running
/// tasks) already use: never past the cap, and never once it is reached.
pub fn fits_under_cap(cap: i64, committed: i64, reserve: i64) -> bool {
    committed < cap && committed.saturating_add(reserve) <= cap
}

/// A credit grant of `cu`: `grants` → `credits`.
pub fn plan_grant(cu: ComputeUnits) -> Result<TransferSpec, LedgerError> {
    if cu.milli() <= 0 {
        return Err(LedgerError::Inconsistent(
            "a credit grant must be positive".to_owned(),
        ));
    }
    Ok(TransferSpec {
        debit: LedgerAccount::Grants,
        credit: LedgerAccount::Credits,
        amount: cu.milli(),
        unit: TransferUnit::MilliCu,
        kind: TransferKind::CreditGrant,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::money::Currency;
    use crate::plan::{Plan, PlanKind, RatingInput, rate};

    fn usd(micros: i64) -> Money {
        Money::from_micros(micros, Currency::USD)
    }

    fn receipt(cu: i64, included_used: i64, included_cu: i64) -> RatingReceipt {
        let mut plan = Plan::default_value_plan();
        plan.included_cu = ComputeUnits::from_milli(included_cu);
        plan.kind = PlanKind::Value {
            cu_per_outcome: [("ticket.resolved".to_owned(), ComputeUnits::from_milli(cu))].into(),
            default_cu: None,
        };
        let input = RatingInput {
            outcome_type: crate::OutcomeType::parse("ticket.resolved").expect("an outcome type"),
            resolved: true,
            usage: Vec::new(),
            tool_ms: 0,
            included_used: ComputeUnits::from_milli(included_used),
            byok: false,
        };
        rate(&plan, &input).unwrap()
    }

    fn kinds(ts: &[TransferSpec]) -> Vec<&'static str> {
        ts.iter().map(|t| t.kind.as_str()).collect()
    }

    #[test]
    fn a_charge_with_no_credits_is_metered_with_its_money() {
        let plan = plan_charge(
            &receipt(1000, 0, 0),
            ChargeBalances {
                credits: ComputeUnits::ZERO,
            },
            usd(1_000_000),
        )
        .unwrap();
        assert_eq!(kinds(&plan), ["charge", "charge_money"]);
        assert_eq!(plan[0].amount, 1000);
        assert_eq!(plan[0].debit, LedgerAccount::Metered);
        assert_eq!(plan[1].amount, 1_000_000);
        assert_eq!(plan[1].unit, TransferUnit::Currency("USD".into()));
    }

    #[test]
    fn credits_are_drawn_first_and_never_below_zero() {
        let partly = plan_charge(
            &receipt(1000, 0, 0),
            ChargeBalances {
                credits: ComputeUnits::from_milli(500),
            },
            usd(1_000_000),
        )
        .unwrap();
        assert_eq!(kinds(&partly), ["credit_draw", "charge", "charge_money"]);
        assert_eq!(
            (partly[0].amount, partly[1].amount, partly[2].amount),
            (500, 500, 500_000)
        );
        let overdrawn = plan_charge(
            &receipt(1000, 0, 0),
            ChargeBalances {
                credits: ComputeUnits::from_milli(-300),
            },
            usd(1_000_000),
        )
        .unwrap();
        assert_eq!(kinds(&overdrawn), ["charge", "charge_money"]);
    }

    #[test]
    fn the_allowance_covers_first_and_zero_parts_are_left_out() {
        let covered = plan_charge(
            &receipt(1000, 0, 5000),
            ChargeBalances {
                credits: ComputeUnits::from_milli(10_000),
            },
            usd(1_000_000),
        )
        .unwrap();
        assert_eq!(kinds(&covered), ["included"]);
        assert_eq!(covered[0].debit, LedgerAccount::Allowance);
    }

    #[test]
    fn a_reversal_mirrors_each_transfer_once() {
        let charge = plan_charge(
            &receipt(1000, 0, 0),
            ChargeBalances {
                credits: ComputeUnits::from_milli(250),
            },
            usd(900_000),
        )
        .unwrap();
        let back = plan_reversal(&charge).unwrap();
        assert_eq!(
            kinds(&back),
            ["credit_draw_reversal", "charge_reversal", "charge_money_reversal"]
        );
        for (o, r) in charge.iter().zip(&back) {
            assert_eq!(
                (r.debit, r.credit, r.amount, &r.unit),
                (o.credit, o.debit, o.amount, &o.unit)
            );
        }
        assert!(plan_reversal(&back).is_err(), "a reversal is final");
    }

    #[test]
    fn a_task_fits_only_while_its_reservation_keeps_under_the_cap() {
        assert!(
            fits_under_cap(3_000_000, 2_000_000, 1_000_000),
            "exactly to the cap"
        );
        assert!(!fits_under_cap(3_000_000, 2_000_001, 1_000_000), "past it");
        assert!(
            !fits_under_cap(3_000_000, 3_000_000, 0),
            "the cap is reached: nothing more, even free"
        );
        assert!(fits_under_cap(3_000_000, 0, 0));
        assert!(!fits_under_cap(3_000_000, i64::MAX - 1, i64::MAX), "no overflow");
    }

    #[test]
    fn an_alert_fires_once_when_spend_crosses_its_line() {
        assert_eq!(alerts_crossed(1000, &[50, 80, 100], 400, 850), vec![50, 80]);
        assert_eq!(
            alerts_crossed(1000, &[50, 80, 100], 500, 600),
            Vec::<u32>::new(),
            "already past 50"
        );
        assert_eq!(alerts_crossed(1000, &[50, 80, 100], 999, 1000), vec![100]);
        assert_eq!(
            alerts_crossed(0, &[50], 0, 10),
            Vec::<u32>::new(),
            "no cap, no alert"
        );
        assert_eq!(
            alerts_crossed(1000, &[50], 900, 100),
            Vec::<u32>::new(),
            "a reversal crosses nothing"
        );
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for &a in LedgerAccount::ALL {
            assert_eq!(a.as_str().parse::<LedgerAccount>().unwrap(), a);
        }
        for base in BaseKind::ALL {
            let kind: TransferKind = base.as_str().parse().unwrap();
            assert_eq!(kind.as_str(), base.as_str());
            let reversal = kind.reversed().unwrap();
            assert_eq!(reversal.as_str().parse::<TransferKind>().unwrap(), reversal);
        }
        assert!("refund".parse::<TransferKind>().is_err());
        assert!("wallet".parse::<LedgerAccount>().is_err());
        assert!(plan_grant(ComputeUnits::ZERO).is_err());
    }

    proptest! {
        /// Whatever the receipt and balances: every transfer is positive
        /// and between two accounts; the CU transfers add up to the
        /// outcome's CU; no more credits are drawn than there are; the
        /// money is the metered CU's price; a reversal cancels every
        /// balance exactly.
        #[test]
        fn a_charge_and_its_reversal_balance(
            cu in 0i64..5_000_000,
            included_used in 0i64..5_000_000,
            included_cu in 0i64..5_000_000,
            credits in -10_000i64..5_000_000,
            price in 0i64..50_000_000,
        ) {
            let r = receipt(cu, included_used, included_cu);
            let plan = plan_charge(&r, ChargeBalances { credits: ComputeUnits::from_milli(credits) }, usd(price)).unwrap();
            let mut cu_total = 0;
            for t in &plan {
                prop_assert!(t.amount > 0);
                prop_assert_ne!(t.debit, t.credit);
                if t.unit == TransferUnit::MilliCu {
                    cu_total += t.amount;
                }
            }
            prop_assert_eq!(cu_total, r.cu.milli());
            let amount = |k: TransferKind| plan.iter().find(|t| t.kind == k).map_or(0, |t| t.amount);
            prop_assert!(amount(TransferKind::CreditDraw) <= credits.max(0));
            prop_assert_eq!(
                amount(TransferKind::ChargeMoney),
                price_of(ComputeUnits::from_milli(amount(TransferKind::Charge)), price).unwrap()
            );
            let mut net = std::collections::BTreeMap::new();
            for t in plan.iter().chain(&plan_reversal(&plan).unwrap()) {
                *net.entry((t.debit, t.unit.as_str().to_owned())).or_insert(0) -= t.amount;
                *net.entry((t.credit, t.unit.as_str().to_owned())).or_insert(0) += t.amount;
            }
            prop_assert!(net.values().all(|v| *v == 0));
        }
    }
}
