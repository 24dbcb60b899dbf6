//! A workflow's `input` section: a JSON Schema (written in YAML) over the
//! input a session is created with. Checked when a session is created, so
//! that a missing or mistyped field is a 422 naming it instead of a session
//! that fails half-way; the parser also checks that steps read only the
//! fields the schema declares.

use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// At most this many problems are reported for one input: enough to fix a
/// request, bounded for an input with thousands of wrong items.
const MAX_ERRORS: usize = 20;

/// A compiled input schema.
#[derive(Clone)]
pub struct InputSchema {
    schema: Value,
    validator: Arc<jsonschema::Validator>,
    /// The top-level properties the schema declares: what `input.<name>`
    /// may read.
    fields: Vec<String>,
}

/// One reason an input does not match its workflow's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// A JSON Pointer (RFC 6901) into the input: `/data/0/name`, or `""`
    /// for the input as a whole.
    pub pointer: String,
    /// What is wrong, without echoing the value (it may be personal data).
    pub message: String,
}

impl InputSchema {
    /// Compiles a schema; the error says what is wrong with it.
    pub fn compile(schema: Value) -> Result<InputSchema, String> {
        let Some(map) = schema.as_object() else {
            return Err("`input` must be a JSON Schema written as a mapping".into());
        };
        if map.get("type").and_then(Value::as_str) != Some("object") {
            return Err(
                "`input` must describe an object: a session's input is a JSON object (`type: object`)"
                    .into(),
            );
        }
        let fields = match map.get("properties") {
            None => Vec::new(),
            Some(Value::Object(p)) => p.keys().cloned().collect(),
            Some(_) => return Err("`input.properties` must be a mapping of field names".into()),
        };
        // The schema is the author's text, not personal data: the whole
        // message, with where in the schema it is.
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            format!("`input` is not a valid JSON Schema (at {at}): {e}")
        })?;
        Ok(InputSchema {
            schema,
            validator: Arc::new(validator),
            fields,
        })
    }

    /// The schema as written, for `GET /v1/workflows` and dry runs.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// The top-level fields the schema declares.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Every problem with `input` (at most [`MAX_ERRORS`]), in document order.
    pub fn check(&self, input: &Value) -> Result<(), Vec<InputError>> {
        let errors: Vec<InputError> = self
            .validator
            .iter_errors(input)
            .take(MAX_ERRORS)
            .map(|e| InputError {
                pointer: e.instance_path().to_string(),
                message: e.masked().to_string(),
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputSchema")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flow_schema() -> InputSchema {
        InputSchema::compile(json!({
            "type": "object",
            "required": ["flow", "data"],
            "properties": {
                "flow": {"type": "string", "minLength": 1},
                "data": {"type": "object"},
                "timeout_ms": {"type": "integer", "minimum": 1}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_matching_input_passes() {
        let s = flow_schema();
        assert!(s.check(&json!({"flow": "x", "data": {}})).is_ok());
        assert_eq!(s.fields(), ["flow", "data", "timeout_ms"]);
    }

    #[test]
    fn each_problem_is_named_by_pointer_without_the_value() {
        let s = flow_schema();
        let errors = s
            .check(&json!({"flow": "secret-name-42", "timeout_ms": "soon"}))
            .unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&""), "{errors:?}"); // `data` is missing
        assert!(pointers.contains(&"/timeout_ms"), "{errors:?}");
        assert!(errors.iter().any(|e| e.message.contains("data")));
        assert!(!errors.iter().any(|e| e.message.contains("soon")));
    }

    #[test]
    fn errors_are_bounded() {
        let s = InputSchema::compile(json!({
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"type": "integer"}}}
        }))
        .unwrap();
        let items: Vec<Value> = (0..500).map(|i| json!(format!("n{i}"))).collect();
        let errors = s.check(&json!({ "items": items })).unwrap_err();
        assert_eq!(errors.len(), MAX_ERRORS);
        assert_eq!(errors[0].pointer, "/items/0");
    }

    #[test]
    fn a_schema_that_is_not_an_object_schema_or_not_valid_is_refused() {
        assert!(
            InputSchema::compile(json!({"type": "string"}))
                .unwrap_err()
                .contains("type: object")
        );
        assert!(
            InputSchema::compile(json!({"type": "object", "properties": []}))
                .unwrap_err()
                .contains("properties")
        );
        assert!(
            InputSchema::compile(json!({"type": "object", "minProperties": "two"}))
                .unwrap_err()
                .contains("not a valid JSON Schema")
        );
    }
}
