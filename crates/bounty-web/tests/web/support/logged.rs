//! What the dashboard logs, kept for tests: one-time links (invites,
//! password resets) are written to the log because no mailer is
//! configured, so a test finds its link there, as a person running the
//! server would. A process-wide `tracing` subscriber keeps every event's
//! fields; tests run in parallel, so each looks its link up by a field
//! only it has (a user's or an invite's id).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One event's fields, by name (the message is `message`).
pub type Fields = BTreeMap<String, String>;

static EVENTS: Mutex<Vec<Fields>> = Mutex::new(Vec::new());

struct Keep;

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Keep {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::new();
        event.record(&mut Visitor(&mut fields));
        events().push(fields);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn events() -> std::sync::MutexGuard<'static, Vec<Fields>> {
    EVENTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts keeping events (once per process; later calls do nothing).
pub fn capture() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::subscriber::set_global_default(Keep).expect("no other global subscriber in these tests");
    });
}

/// Every kept event with `field` equal to `value`.
pub fn events_with(field: &str, value: &str) -> Vec<Fields> {
    events()
        .iter()
        .filter(|e| e.get(field).is_some_and(|v| v == value))
        .cloned()
        .collect()
}

/// The `link` of the last event with `field` equal to `value`.
pub fn link_for(field: &str, value: &str) -> Option<String> {
    events_with(field, value)
        .into_iter()
        .rev()
        .find_map(|e| e.get("link").cloned())
}

/// How many kept events hold `needle` in any field.
pub fn events_holding(needle: &str) -> usize {
    events()
        .iter()
        .filter(|e| e.values().any(|v| v.contains(needle)))
        .count()
}
