//! What the process logs, searched for secrets: a process-wide `tracing`
//! subscriber that sees every event and span field (the request log,
//! `#[instrument]` fields, errors) at every level, and counts the ones
//! holding a watched string. Tests run in parallel in one process, so each
//! watches strings only it uses (a fresh random secret); nothing else is
//! kept, so the suite's memory does not grow with its logs.

use std::fmt;
use std::sync::{Mutex, MutexGuard, Once};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Each watched string and how many fields have held it.
static WATCHED: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

fn watched() -> MutexGuard<'static, Vec<(String, usize)>> {
    WATCHED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Watch;

struct Visitor;

impl Visitor {
    fn check(&self, field: &Field, text: &str) {
        let mut list = watched();
        for (needle, hits) in list.iter_mut() {
            if text.contains(needle.as_str()) || field.name().contains(needle.as_str()) {
                *hits += 1;
            }
        }
    }
}

impl Visit for Visitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.check(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.check(field, &format!("{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.check(field, &format!("{value} / {value:?}"));
    }
}

impl Subscriber for Watch {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        span.record(&mut Visitor);
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        values.record(&mut Visitor);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        event.record(&mut Visitor);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Starts counting fields that hold `needle` (installing the subscriber
/// once per process).
pub fn watch(needle: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(Watch).expect("no other global subscriber in these tests");
    });
    watched().push((needle.to_owned(), 0));
}

/// How many logged fields have held `needle` since it was watched.
pub fn hits(needle: &str) -> usize {
    watched()
        .iter()
        .filter(|(n, _)| n == needle)
        .map(|(_, hits)| hits)
        .sum()
}
