//! What is wrong with a submitted form, field by field.
//!
//! The dashboard's forms report every wrong field at once: each message
//! is shown beside its field (and tied to it with `aria-describedby`), and
//! a summary at the top links to each field, in the form's order.

use std::collections::BTreeMap;

/// Field name (the input's `name` and `id`) → what is wrong with it.
#[derive(Debug, Clone, Default)]
pub(crate) struct FieldErrors(BTreeMap<String, String>);

/// One line of the summary: the field's id, its label, the message.
pub(crate) struct SummaryLine {
    pub(crate) field: String,
    pub(crate) label: String,
    pub(crate) message: String,
}

impl FieldErrors {
    /// Records `message` for `field`, unless it already has one (the first
    /// problem found is the one shown).
    pub(crate) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message for `field`, if it is wrong.
    pub(crate) fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// The summary, in the order of `fields` (`(id, label)`, the form's
    /// order; a form with rows lists each row's fields); a field not
    /// listed there is summarised under its id.
    pub(crate) fn summary<F: AsRef<str>, L: AsRef<str>>(&self, fields: &[(F, L)]) -> Vec<SummaryLine> {
        let mut lines: Vec<SummaryLine> = fields
            .iter()
            .filter_map(|(field, label)| {
                self.get(field.as_ref()).map(|m| SummaryLine {
                    field: field.as_ref().to_owned(),
                    label: label.as_ref().to_owned(),
                    message: m.to_owned(),
                })
            })
            .collect();
        if lines.len() < self.0.len() {
            for (field, message) in &self.0 {
                if !fields.iter().any(|(f, _)| f.as_ref() == field) {
                    lines.push(SummaryLine {
                        field: "main".to_owned(),
                        label: "Form".to_owned(),
                        message: format!("{field}: {message}"),
                    });
                }
            }
        }
        lines
    }
}
