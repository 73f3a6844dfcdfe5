//! The summary: latency per target and rate, what each gateway adds over
//! direct calls, the maxima and their ratio, beside the targets.

use std::time::Duration;

use crate::load::{Mode, Percentiles, Run};

/// One open-loop run, or why it was not run.
pub struct Cell {
    pub target: &'static str,
    pub mode: Mode,
    pub rate: f64,
    pub run: Option<Run>,
    /// The target's maximum, when it was below the rate.
    pub skipped_max: f64,
}

impl Cell {
    pub fn ran(target: &'static str, mode: Mode, rate: f64, run: Run) -> Cell {
        Cell {
            target,
            mode,
            rate,
            run: Some(run),
            skipped_max: 0.0,
        }
    }

    pub fn skipped(target: &'static str, mode: Mode, rate: f64, max: f64) -> Cell {
        Cell {
            target,
            mode,
            rate,
            run: None,
            skipped_max: max,
        }
    }
}

/// A target's best closed-loop run.
pub struct Saturation {
    pub target: &'static str,
    pub concurrency: usize,
    pub run: Run,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn find<'a>(cells: &'a [Cell], target: &str, mode: Mode, rate: f64) -> Option<&'a Run> {
    cells
        .iter()
        .find(|c| c.target == target && c.mode == mode && c.rate == rate)
        .and_then(|c| c.run.as_ref())
}

/// The percentiles the table reads: total latency, or time to first token.
fn pick(run: &Run, mode: Mode) -> Percentiles {
    match mode {
        Mode::Chat => Percentiles::of(&run.latency),
        Mode::Stream => Percentiles::of(&run.ttft),
    }
}

/// `(p50, p99)` that `target` adds over direct at `rate`, in ms.
pub fn added(cells: &[Cell], target: &str, mode: Mode, rate: f64) -> Option<(f64, f64)> {
    let base = pick(find(cells, "direct", mode, rate)?, mode);
    let run = find(cells, target, mode, rate)?;
    if run.latency.is_empty() {
        return None;
    }
    let ours = pick(run, mode);
    Some((ms(ours.p50) - ms(base.p50), ms(ours.p99) - ms(base.p99)))
}

fn table(cells: &[Cell], mode: Mode) {
    let (title, what) = match mode {
        Mode::Chat => (
            "non-streaming chat completions, open loop: latency from the scheduled send to the whole answer",
            "",
        ),
        Mode::Stream => (
            "streaming chat completions, open loop: time to first token (first content delta) from the scheduled send",
            "  total p50",
        ),
    };
    println!("{title}");
    println!(
        "{:>7} {:<8} {:>7} {:>5} {:>5} {:>9} {:>9} {:>9} {:>10} {:>10}{what}",
        "rate/s", "target", "ok", "err", "shed", "p50 ms", "p99 ms", "p999 ms", "+p50 ms", "+p99 ms"
    );
    let rank = |t: &str| ["direct", "bounty", "litellm"].iter().position(|n| *n == t);
    let mut rows: Vec<&Cell> = cells.iter().filter(|c| c.mode == mode).collect();
    rows.sort_by(|a, b| {
        a.rate
            .total_cmp(&b.rate)
            .then(rank(a.target).cmp(&rank(b.target)))
    });
    for cell in rows {
        let Some(run) = &cell.run else {
            println!(
                "{:>7.0} {:<8} not run: its maximum is {:.0} req/s",
                cell.rate, cell.target, cell.skipped_max
            );
            continue;
        };
        let p = pick(run, mode);
        let (add50, add99) = match added(cells, cell.target, mode, cell.rate) {
            Some((a, b)) if cell.target != "direct" => (format!("{a:+.3}"), format!("{b:+.3}")),
            _ => ("-".into(), "-".into()),
        };
        let total = if mode == Mode::Stream {
            format!("  {:>9.3}", ms(Percentiles::of(&run.latency).p50))
        } else {
            String::new()
        };
        println!(
            "{:>7.0} {:<8} {:>7} {:>5} {:>5} {:>9.3} {:>9.3} {:>9.3} {:>10} {:>10}{total}",
            cell.rate,
            cell.target,
            run.latency.len(),
            run.errors,
            run.shed,
            ms(p.p50),
            ms(p.p99),
            ms(p.p999),
            add50,
            add99,
        );
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    }
}

pub fn print(cells: &[Cell], maxima: &[Saturation], cores: usize, load: &str) {
    println!("==== summary ({cores} CPUs; load average {load} at the end) ====");
    table(cells, Mode::Chat);
    println!();
    table(cells, Mode::Stream);
    println!();
    println!("maximum throughput, closed loop, non-streaming (latency from the real send)");
    println!(
        "{:<8} {:>11} {:>9} {:>9} {:>9} {:>6}",
        "target", "concurrency", "req/s", "p50 ms", "p99 ms", "err"
    );
    for s in maxima {
        let p = Percentiles::of(&s.run.latency);
        println!(
            "{:<8} {:>11} {:>9.0} {:>9.3} {:>9.3} {:>6}",
            s.target,
            s.concurrency,
            s.run.throughput(),
            ms(p.p50),
            ms(p.p99),
            s.run.errors
        );
    }
    let max_of = |name: &str| {
        maxima
            .iter()
            .find(|s| s.target == name)
            .map(|s| s.run.throughput())
    };
    let ratio = match (max_of("bounty"), max_of("litellm")) {
        (Some(b), Some(l)) if l > 0.0 => Some(b / l),
        _ => None,
    };
    match ratio {
        Some(r) => println!("bounty max / litellm max: {r:.1}x"),
        None => println!("bounty max / litellm max: not measured"),
    }
    if let Some(d) = max_of("direct") {
        println!(
            "(direct's maximum is the load generator and the fake together on the same cores: {d:.0} req/s)"
        );
    }

    println!();
    println!("targets (issue 18):");
    let chat = added(cells, "bounty", Mode::Chat, 2_000.0);
    println!(
        "  p99 added < 1 ms at 2,000 req/s, non-streaming: {}  ({})",
        verdict(chat.map(|(_, p99)| p99 < 1.0)),
        chat.map_or("bounty not run at 2,000 req/s".into(), |(p50, p99)| format!(
            "bounty adds p50 {p50:+.3} ms, p99 {p99:+.3} ms"
        )),
    );
    let stream_rate = cells
        .iter()
        .filter(|c| c.mode == Mode::Stream && c.target == "bounty" && c.run.is_some())
        .map(|c| c.rate)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let ttft = stream_rate.and_then(|r| added(cells, "bounty", Mode::Stream, r).map(|a| (r, a)));
    println!(
        "  TTFT added < 1 ms, streaming (p99): {}  ({})",
        verdict(ttft.map(|(_, (_, p99))| p99 < 1.0)),
        ttft.map_or("bounty streaming not run".into(), |(r, (p50, p99))| format!(
            "at {r:.0} req/s bounty adds p50 {p50:+.3} ms, p99 {p99:+.3} ms"
        )),
    );
    println!(
        "  >= 20x LiteLLM's max throughput: {}  ({})",
        verdict(ratio.map(|r| r >= 20.0)),
        ratio.map_or("needs both maxima".into(), |r| format!("{r:.1}x")),
    );
    for (name, mode) in [("litellm", Mode::Chat), ("litellm", Mode::Stream)] {
        for cell in cells
            .iter()
            .filter(|c| c.target == name && c.mode == mode && c.run.is_some())
        {
            if let Some((p50, p99)) = added(cells, name, mode, cell.rate) {
                println!(
                    "  for comparison, litellm adds {} p50 {p50:+.3} ms, p99 {p99:+.3} ms at {:.0} req/s",
                    if mode == Mode::Chat { "latency" } else { "TTFT" },
                    cell.rate
                );
            }
        }
    }
}
