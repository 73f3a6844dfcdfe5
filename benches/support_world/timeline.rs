//! What the fakes saw, with their own clocks: when each model request and
//! each tool request of a conversation arrived and was answered. Bounty's
//! overhead per step is read from it: the time from a model's answer that
//! asked for tools to the next model request of the same conversation,
//! less the tool requests in between, is Bounty's alone (parsing, checking
//! the arguments, recording the step, calling out, building the next
//! request, plus loopback HTTP). The model fake also counts the final
//! answers per ticket, which the simulated customers wait on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// What a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A model request; `tool_calls`: its answer asked for tools.
    Model {
        tool_calls: bool,
    },
    Tool,
}

#[derive(Debug, Clone, Copy)]
pub struct Event {
    pub ticket: u32,
    pub kind: Kind,
    pub start: Instant,
    pub end: Instant,
}

/// The shared record.
#[derive(Default)]
pub struct Timeline {
    events: Mutex<Vec<Event>>,
    off: AtomicBool,
    answers: Mutex<HashMap<u32, u32>>,
    answered: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Timeline {
    pub fn record(&self, ticket: u32, kind: Kind, start: Instant) {
        if !self.off.load(Ordering::Relaxed) {
            let end = Instant::now();
            lock(&self.events).push(Event {
                ticket,
                kind,
                start,
                end,
            });
        }
    }

    /// Stops (or resumes) recording events; answers are always counted.
    pub fn set_recording(&self, on: bool) {
        self.off.store(!on, Ordering::Relaxed);
    }

    /// Takes the events recorded so far.
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *lock(&self.events))
    }

    /// The model gave ticket `ticket` a final answer (or handed it off).
    pub fn answered(&self, ticket: u32) {
        *lock(&self.answers).entry(ticket).or_insert(0) += 1;
        self.answered.notify_waiters();
    }

    /// Final answers given to `ticket` so far.
    pub fn answers(&self, ticket: u32) -> u32 {
        lock(&self.answers).get(&ticket).copied().unwrap_or(0)
    }

    /// Waits until `ticket` has more than `seen` answers, or `timeout`.
    pub async fn wait_answer(&self, ticket: u32, seen: u32, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.answered.notified();
            if self.answers(ticket) > seen {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.answers(ticket) > seen;
            }
        }
    }
}

/// Bounty's overhead of each step that called tools, in microseconds:
/// per conversation, from the end of a model answer with tool calls to the
/// start of the next model request, less the time the tool requests in
/// between took.
pub fn step_overheads(events: &[Event]) -> Vec<u64> {
    let mut by_ticket: HashMap<u32, Vec<Event>> = HashMap::new();
    for e in events {
        by_ticket.entry(e.ticket).or_default().push(*e);
    }
    let mut out = Vec::new();
    for (_, mut evs) in by_ticket {
        evs.sort_by_key(|e| e.start);
        for (i, e) in evs.iter().enumerate() {
            if e.kind != (Kind::Model { tool_calls: true }) {
                continue;
            }
            let mut tools = Duration::ZERO;
            for next in &evs[i + 1..] {
                match next.kind {
                    Kind::Tool => tools += next.end.saturating_duration_since(next.start),
                    Kind::Model { .. } => {
                        let gap = next.start.saturating_duration_since(e.end);
                        out.push(gap.saturating_sub(tools).as_micros() as u64);
                        break;
                    }
                }
            }
        }
    }
    out
}
