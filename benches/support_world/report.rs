//! The figures of a run: resolution rate against the world's theoretical
//! maximum, pass^k over the replays (τ-bench's measure: the chance that
//! all k tries of a ticket succeed), escalation rate, cost per resolved
//! conversation, and percentiles of Bounty's overhead per step.

use std::collections::BTreeMap;

use super::driver::End;
use super::skill::Skills;
use super::world::{Class, Ticket, World};

/// One finished conversation, as the report needs it.
#[derive(Debug, Clone, Copy)]
pub struct Played {
    pub ticket: u32,
    pub class: Class,
    pub end: End,
    /// Whether the model's draw was to handle it well.
    pub good: bool,
}

impl Played {
    /// The expected end: resolved when solvable, escalated otherwise.
    pub fn correct(&self) -> bool {
        if self.class.solvable() {
            self.end == End::Resolved
        } else {
            self.end == End::Escalated
        }
    }
}

/// The figures of a set of conversations.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub conversations: usize,
    pub resolved: usize,
    /// Resolved share.
    pub resolution: f64,
    /// The most this run's draws allow: solvable tickets drawn to succeed.
    pub max_resolution: f64,
    /// The skills' expectation over the run's ticket mix.
    pub expected_max: f64,
    pub escalation: f64,
    /// pass^1 ..= pass^k.
    pub pass: Vec<f64>,
    /// Resolved share per class (escalated share for unsolvable).
    pub per_class: BTreeMap<&'static str, f64>,
}

/// `n` choose `k`, as a float.
fn choose(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// pass^j for j in 1..=k, from `successes` per ticket out of `k` tries:
/// the mean over tickets of C(c, j) / C(k, j).
pub fn pass_hat(successes: &[usize], k: usize) -> Vec<f64> {
    (1..=k)
        .map(|j| {
            let sum: f64 = successes.iter().map(|&c| choose(c, j) / choose(k, j)).sum();
            sum / successes.len().max(1) as f64
        })
        .collect()
}

pub fn summarize(played: &[Played], tickets: &[Ticket], skills: &Skills, k: usize) -> Summary {
    let n = played.len().max(1) as f64;
    let count = |f: &dyn Fn(&Played) -> bool| played.iter().filter(|p| f(p)).count();
    let resolved = count(&|p| p.end == End::Resolved);
    let escalated = count(&|p| p.end == End::Escalated);
    let mut by_ticket: BTreeMap<u32, usize> = BTreeMap::new();
    for p in played {
        *by_ticket.entry(p.ticket).or_insert(0) += usize::from(p.correct());
    }
    let successes: Vec<usize> = by_ticket.values().copied().collect();
    let expected_max = tickets
        .iter()
        .filter(|t| t.class.solvable())
        .map(|t| skills.0[t.class.index()])
        .sum::<f64>()
        / tickets.len().max(1) as f64;
    let mut per_class = BTreeMap::new();
    for class in Class::ALL {
        let of: Vec<&Played> = played.iter().filter(|p| p.class == class).collect();
        if !of.is_empty() {
            let ok = of.iter().filter(|p| p.correct()).count();
            per_class.insert(class.name(), ok as f64 / of.len() as f64);
        }
    }
    Summary {
        conversations: played.len(),
        resolved,
        resolution: resolved as f64 / n,
        max_resolution: count(&|p| p.good && p.class.solvable()) as f64 / n,
        expected_max,
        escalation: escalated as f64 / n,
        pass: pass_hat(&successes, k),
        per_class,
    }
}

/// The `p`-th percentile (0..=1) of sorted values, by nearest rank.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Percent with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The tickets of `world` a run plays.
pub fn tickets(world: &World, n: usize) -> &[Ticket] {
    &world.tickets[..n.min(world.tickets.len())]
}
