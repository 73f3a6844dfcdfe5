//! An agent's output schema: compiled once, checked against each output.

/// A compiled JSON Schema.
pub struct OutputSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for OutputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputSchema")
    }
}

/// Most violations reported for one output.
const MAX_ERRORS: usize = 20;

impl OutputSchema {
    /// Compiles `schema`; the error says what is wrong with it. Remote
    /// `$ref`s are not fetched.
    pub fn compile(schema: &serde_json::Value) -> Result<Self, String> {
        if !schema.is_object() {
            return Err("must be a JSON Schema object".to_owned());
        }
        jsonschema::validator_for(schema)
            .map(|validator| OutputSchema { validator })
            .map_err(|e| format!("is not a valid JSON Schema: {e}"))
    }

    /// The violations of `output` (empty when it matches). Output that is
    /// not JSON at all is one violation.
    pub fn violations(&self, output: &str) -> Vec<String> {
        let value: serde_json::Value = match serde_json::from_str(output.trim()) {
            Ok(v) => v,
            Err(e) => return vec![format!("output is not valid JSON: {e}")],
        };
        violations(&self.validator, &value, MAX_ERRORS)
    }
}

/// The first `max` violations of `value` against `validator`, each led by
/// its JSON pointer when it is not the root (`/reply: 3 is not of type
/// "string"`).
pub(crate) fn violations(
    validator: &jsonschema::Validator,
    value: &serde_json::Value,
    max: usize,
) -> Vec<String> {
    validator
        .iter_errors(value)
        .take(max)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{path}: {e}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn checks_outputs() {
        let s = OutputSchema::compile(&json!({
            "type": "object",
            "properties": {"reply": {"type": "string"}},
            "required": ["reply"]
        }))
        .unwrap();
        assert!(s.violations(r#"{"reply": "hi"}"#).is_empty());
        assert_eq!(s.violations(r#"{"reply": 3}"#).len(), 1);
        assert!(s.violations("not json")[0].contains("not valid JSON"));
        assert!(!s.violations("{}").is_empty());
    }

    #[test]
    fn refuses_bad_schemas() {
        assert!(OutputSchema::compile(&json!("string")).is_err());
        assert!(OutputSchema::compile(&json!({"type": 12})).is_err());
    }
}
