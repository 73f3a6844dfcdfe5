//! Text that may reach the database: where a NUL character hides.
//!
//! Postgres `text` refuses the NUL character (`\u0000`, "invalid byte
//! sequence for encoding UTF8: 0x00"); SQLite stores it. JSON may carry it
//! in any string, and a form or query string as `%00`. So every edge that
//! takes text refuses NUL before anything is stored, naming the field, the
//! same way on both backends: [`nul_path`] finds the first string (or
//! object key) of a JSON value that holds one, and names it by its path
//! as serde and our API errors do (`input.body`, `model_route[1]`).

use serde_json::Value;

/// Whether `s` holds a NUL character.
pub fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// The path of the first string or object key in `value` that holds a NUL
/// character, or `None` when there is none. The root itself is `.`.
///
/// The walk is iterative, so a deeply nested value cannot overflow the
/// stack (serde_json already bounds nesting at 128 levels when parsing).
pub fn nul_path(value: &Value) -> Option<String> {
    let mut stack: Vec<(&Value, String)> = vec![(value, String::new())];
    while let Some((v, path)) = stack.pop() {
        match v {
            Value::String(s) if has_nul(s) => return Some(root_or(path)),
            Value::Array(items) => {
                // Reversed, so the first item is looked at first.
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push((item, format!("{path}[{i}]")));
                }
            }
            Value::Object(map) => {
                let mut children = Vec::with_capacity(map.len());
                for (key, item) in map {
                    if has_nul(key) {
                        // The key itself is named, its NUL spelled out.
                        let key = key.replace('\0', "\\u0000");
                        return Some(if path.is_empty() {
                            key
                        } else {
                            format!("{path}.{key}")
                        });
                    }
                    let at = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    children.push((item, at));
                }
                stack.extend(children.into_iter().rev());
            }
            _ => {}
        }
    }
    None
}

fn root_or(path: String) -> String {
    if path.is_empty() { ".".to_owned() } else { path }
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, a quote or a
/// line break, and defused when a spreadsheet would read it as a formula
/// (a leading `=`, `+`, `-`, `@`, tab or carriage return gets a `'`).
pub fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_the_first_field_holding_a_nul() {
        assert_eq!(nul_path(&json!({"a": "ok", "b": [1, "x"]})), None);
        assert_eq!(nul_path(&json!({"agent": "a\u{0}b"})).as_deref(), Some("agent"));
        assert_eq!(
            nul_path(&json!({"input": {"subject": "s", "body": "\u{0}"}})).as_deref(),
            Some("input.body")
        );
        assert_eq!(
            nul_path(&json!({"model_route": ["fast", "sm\u{0}art", "\u{0}"]})).as_deref(),
            Some("model_route[1]")
        );
        assert_eq!(
            nul_path(&json!({"metadata": {"k\u{0}": 1}})).as_deref(),
            Some("metadata.k\\u0000")
        );
        assert_eq!(nul_path(&json!("\u{0}")).as_deref(), Some("."));
        assert_eq!(
            nul_path(&json!([[{"x": ["\u{0}"]}]])).as_deref(),
            Some("[0][0].x[0]")
        );
    }

    #[test]
    fn a_deep_value_does_not_overflow_the_stack() {
        let mut v = json!("\u{0}");
        for _ in 0..1_000 {
            v = json!([v]);
        }
        assert!(nul_path(&v).is_some_and(|p| p.len() == 3_000));
    }
}
