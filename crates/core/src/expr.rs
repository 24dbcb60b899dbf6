//! CEL expressions and the `${...}` templates built from them.
//!
//! A template is any JSON value; a string that is exactly `${expr}` becomes the
//! expression's typed value, a string with `${expr}` inside is interpolated.
//! Expressions are compiled once, when the workflow is loaded.

use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// The variables an expression may read. Which ones exist depends on where
/// the expression sits (only a call's `provider_ref` sees `result`, ...).
#[derive(Debug, Default, Clone, Copy)]
pub struct Scope<'a> {
    pub input: Option<&'a Value>,
    pub state: Option<&'a Value>,
    pub session: Option<&'a Value>,
    pub result: Option<&'a Value>,
    pub event: Option<&'a Value>,
}

/// Every variable name the language knows, for validation messages.
pub const VARIABLES: &[&str] = &["input", "state", "session", "result", "event"];

/// A compiled CEL expression with its source text.
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    program: Arc<cel::Program>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{expr}`: {message}")]
pub struct EvalError {
    pub expr: String,
    pub message: String,
}

impl Expr {
    /// Compiles `source`; the error is a one-line message fit for `file:line:col`.
    pub fn compile(source: &str) -> Result<Expr, String> {
        let program = cel::Program::compile(source).map_err(|errs| {
            let msgs: Vec<String> = errs.errors.iter().map(|e| e.msg.clone()).collect();
            if msgs.is_empty() {
                format!("CEL does not compile: `{source}`")
            } else {
                format!("CEL does not compile: `{source}`: {}", msgs.join("; "))
            }
        })?;
        Ok(Expr {
            source: source.into(),
            program: Arc::new(program),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The dotted paths into the variables that the expression reads, such
    /// as `state.score.body.score`, in order of appearance and without
    /// repeats; what a rule trace shows as the rule's inputs. Text inside
    /// string literals is skipped.
    pub fn read_paths(&self) -> Vec<String> {
        let src: Vec<char> = self.source.chars().collect();
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < src.len() {
            let c = src[i];
            if c == '\'' || c == '"' {
                i += 1;
                while i < src.len() && src[i] != c {
                    i += if src[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            let starts_ident = (c.is_ascii_alphabetic() || c == '_')
                && (i == 0
                    || !(src[i - 1].is_ascii_alphanumeric()
                        || src[i - 1] == '_'
                        || src[i - 1] == '.'));
            if !starts_ident {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < src.len()
                && (src[j].is_ascii_alphanumeric() || src[j] == '_' || src[j] == '.')
            {
                j += 1;
            }
            let path: String = src[i..j]
                .iter()
                .collect::<String>()
                .trim_end_matches('.')
                .to_string();
            let root = path.split('.').next().unwrap_or_default().to_string();
            // A path followed by `(` ends in a method call: keep the receiver.
            let path = if j < src.len() && src[j] == '(' {
                path.rsplit_once('.')
                    .map(|(p, _)| p.to_string())
                    .unwrap_or_default()
            } else {
                path
            };
            if VARIABLES.contains(&root.as_str()) && path.contains('.') && !out.contains(&path) {
                out.push(path);
            }
            i = j;
        }
        out
    }

    /// Top-level variables the expression reads. Names bound by comprehension
    /// macros (`exists`, `all`, `map`, `filter`) are not reported as unknown.
    pub fn variables(&self) -> Vec<String> {
        let refs = self.program.references();
        let uses_macros = ["exists", "all", "exists_one", "map", "filter"]
            .iter()
            .any(|m| refs.has_function(m));
        refs.variables()
            .into_iter()
            .filter(|v| VARIABLES.contains(v) || !uses_macros)
            .map(str::to_string)
            .collect()
    }

    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        let fail = |message: String| EvalError {
            expr: self.source.to_string(),
            message,
        };
        let mut ctx = cel::Context::default();
        let vars = [
            ("input", scope.input),
            ("state", scope.state),
            ("session", scope.session),
            ("result", scope.result),
            ("event", scope.event),
        ];
        for (name, value) in vars {
            if let Some(v) = value {
                ctx.add_variable_from_value(name, json_to_cel(v));
            }
        }
        let value = self
            .program
            .execute(&ctx)
            .map_err(|e| fail(e.to_string()))?;
        value.json().map_err(|e| fail(e.to_string()))
    }

    /// Evaluates a condition; anything but a boolean is an error, not `false`.
    pub fn eval_bool(&self, scope: &Scope<'_>) -> Result<bool, EvalError> {
        match self.eval(scope)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError {
                expr: self.source.to_string(),
                message: format!("expected a boolean, got {}", type_name(&other)),
            }),
        }
    }
}

/// JSON to CEL. Whole numbers become `int` (not `uint`, which serde would
/// pick for positive values) so that `input.n + 1` works as people expect.
fn json_to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(map) => {
            let m: std::collections::HashMap<String, cel::Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_cel(v)))
                .collect();
            cel::Value::from(m)
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// A JSON value with `${...}` expressions inside.
#[derive(Debug, Clone)]
pub enum Template {
    Literal(Value),
    Expr(Expr),
    Interpolate(Vec<Part>),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

#[derive(Debug, Clone)]
pub enum Part {
    Text(String),
    Expr(Expr),
}

/// A problem found while compiling a template, with the JSON path inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub path: Vec<String>,
    pub message: String,
}

impl Template {
    /// Compiles every `${...}` in `value`, collecting all errors.
    pub fn compile(value: &Value) -> Result<Template, Vec<TemplateError>> {
        let mut errors = Vec::new();
        let t = compile_value(value, &mut Vec::new(), &mut errors);
        if errors.is_empty() {
            Ok(t)
        } else {
            Err(errors)
        }
    }

    pub fn literal(value: Value) -> Template {
        Template::Literal(value)
    }

    /// Every expression in the template, for variable checks.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Expr>) {
        match self {
            Template::Literal(_) => {}
            Template::Expr(e) => out.push(e),
            Template::Interpolate(parts) => out.extend(parts.iter().filter_map(|p| match p {
                Part::Expr(e) => Some(e),
                Part::Text(_) => None,
            })),
            Template::Array(items) => items.iter().for_each(|t| t.collect(out)),
            Template::Object(fields) => fields.iter().for_each(|(_, t)| t.collect(out)),
        }
    }

    pub fn render(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Expr(e) => e.eval(scope)?,
            Template::Interpolate(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => s.push_str(t),
                        Part::Expr(e) => match e.eval(scope)? {
                            Value::String(v) => s.push_str(&v),
                            Value::Null => {}
                            other => s.push_str(&other.to_string()),
                        },
                    }
                }
                Value::String(s)
            }
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| t.render(scope))
                    .collect::<Result<_, _>>()?,
            ),
            Template::Object(fields) => {
                let mut map = serde_json::Map::new();
                for (k, t) in fields {
                    map.insert(k.clone(), t.render(scope)?);
                }
                Value::Object(map)
            }
        })
    }
}

fn compile_value(
    value: &Value,
    path: &mut Vec<String>,
    errors: &mut Vec<TemplateError>,
) -> Template {
    match value {
        Value::String(s) => match compile_string(s) {
            Ok(t) => t,
            Err(message) => {
                errors.push(TemplateError {
                    path: path.clone(),
                    message,
                });
                Template::Literal(Value::Null)
            }
        },
        Value::Array(items) => Template::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    path.push(i.to_string());
                    let t = compile_value(v, path, errors);
                    path.pop();
                    t
                })
                .collect(),
        ),
        Value::Object(map) => Template::Object(
            map.iter()
                .map(|(k, v)| {
                    path.push(k.clone());
                    let t = compile_value(v, path, errors);
                    path.pop();
                    (k.clone(), t)
                })
                .collect(),
        ),
        other => Template::Literal(other.clone()),
    }
}

/// Splits a string into text and `${expr}` parts. Braces inside an expression
/// (CEL map literals) and quoted strings are balanced, `$${` escapes.
pub fn compile_string(s: &str) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if s[i..].starts_with("$${") {
            text.push_str("${");
            i += 3;
        } else if s[i..].starts_with("${") {
            let start = i + 2;
            let end =
                find_close(s, start).ok_or_else(|| format!("unclosed `${{` in template `{s}`"))?;
            let src = s[start..end].trim();
            if src.is_empty() {
                return Err(format!("empty `${{}}` in template `{s}`"));
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Expr(Expr::compile(src)?));
            i = end + 1;
        } else {
            let ch = s[i..].chars().next().unwrap_or_default();
            text.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(match parts.len() {
        0 => Template::Literal(Value::String(String::new())),
        1 => match parts.pop() {
            Some(Part::Expr(e)) => Template::Expr(e),
            Some(Part::Text(t)) => Template::Literal(Value::String(t)),
            None => Template::Literal(Value::String(String::new())),
        },
        _ => Template::Interpolate(parts),
    })
}

fn find_close(s: &str, from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (off, ch) in s[from..].char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '\'' | '"' => quote = Some(ch),
            '{' => depth += 1,
            '}' if depth == 0 => return Some(from + off),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every example of docs/workflows.md "Functions and operators".
    #[test]
    fn documented_functions_work() {
        let state = json!({
            "score": {"body": {"value": 3}},
            "event": {"data": {"status": "ONBOARDING_FINISHED"}},
            "a": {"value": 4},
            "result": {"summary": {"persons": [1, 2]}},
            "sources": {"sources": [{"code": "UWV", "available": true}, {"code": "PSD2", "available": false}]},
        });
        let input =
            json!({"iban": "NL91ABNA0417164300", "postcode": "3511AB", "loan_amount": 250000});
        let scope = Scope {
            input: Some(&input),
            state: Some(&state),
            ..Default::default()
        };
        for (expr, want) in [
            ("has(state.score.body.value)", json!(true)),
            ("has(state.score.body.missing)", json!(false)),
            ("size(state.result.summary.persons)", json!(2)),
            ("size('abc')", json!(3)),
            ("state.event.data.status.contains('FINISH')", json!(true)),
            ("input.iban.startsWith('NL')", json!(true)),
            ("input.iban.endsWith('00')", json!(true)),
            ("input.postcode.matches('^[0-9]{4}[A-Z]{2}$')", json!(true)),
            ("int(2.9)", json!(2)),
            ("double(input.loan_amount) * 0.5", json!(125000.0)),
            ("string(12)", json!("12")),
            ("max(state.a.value, 10)", json!(10)),
            ("min(state.a.value, 10)", json!(4)),
            (
                "(timestamp('2026-12-01T00:00:00Z') + duration('24h')).getDayOfMonth()",
                json!(1),
            ),
            (
                "timestamp('2026-12-01T00:00:00Z').getFullYear()",
                json!(2026),
            ),
            ("state.sources.sources.all(s, s.available)", json!(false)),
            ("state.sources.sources.exists(s, s.available)", json!(true)),
            (
                "state.sources.sources.exists_one(s, s.available)",
                json!(true),
            ),
            (
                "state.sources.sources.filter(s, !s.available).map(s, s.code)",
                json!(["PSD2"]),
            ),
            ("'UWV' in state.sources.sources.map(s, s.code)", json!(true)),
            ("input.loan_amount > 100000 ? 'big' : 'small'", json!("big")),
        ] {
            let e = Expr::compile(expr).unwrap_or_else(|m| panic!("{expr}: {m}"));
            assert_eq!(
                e.eval(&scope).unwrap_or_else(|err| panic!("{expr}: {err}")),
                want,
                "{expr}"
            );
        }
    }

    #[test]
    fn read_paths_lists_what_a_rule_reads() {
        let e = Expr::compile(
            "state.result.income - state.result.fixed_costs > input.amount / 5 && state.result.employer.name.startsWith('state.x') && size(state.debts) == 0 && state.result.income > 0",
        )
        .expect("compiles");
        assert_eq!(
            e.read_paths(),
            vec![
                "state.result.income",
                "state.result.fixed_costs",
                "input.amount",
                "state.result.employer.name",
                "state.debts",
            ]
        );
        assert!(
            Expr::compile("1 == 1")
                .expect("compiles")
                .read_paths()
                .is_empty()
        );
    }

    #[test]
    fn whole_expression_keeps_its_type() {
        let t = compile_string("${input.n + 1}").expect("compiles");
        let input = json!({"n": 41});
        let scope = Scope {
            input: Some(&input),
            ..Default::default()
        };
        assert_eq!(t.render(&scope).expect("renders"), json!(42));
    }

    #[test]
    fn interpolation_and_escape() {
        let t = compile_string("a ${input.s} $${b} ${ {'k': 1}.k }").expect("compiles");
        let input = json!({"s": "x"});
        let scope = Scope {
            input: Some(&input),
            ..Default::default()
        };
        assert_eq!(t.render(&scope).expect("renders"), json!("a x ${b} 1"));
    }

    #[test]
    fn errors_are_reported() {
        assert!(compile_string("${ 1 + }").is_err());
        assert!(compile_string("${ 1").is_err());
        let e = Expr::compile("state.missing.x > 1").expect("compiles");
        let state = json!({});
        let scope = Scope {
            state: Some(&state),
            ..Default::default()
        };
        assert!(e.eval_bool(&scope).is_err());
    }
}
