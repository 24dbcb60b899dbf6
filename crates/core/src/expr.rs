//! CEL expressions and the `${...}` templates built from them.
//!
//! A template is any JSON value; a string that is exactly `${expr}` becomes the
//! expression's typed value, a string with `${expr}` inside is interpolated.
//! Expressions are compiled once, when the workflow is loaded.

mod complexity;

use complexity::check_complexity;
pub use complexity::{MAX_CONDITIONALS, MAX_OPERATORS, MAX_TOKENS};
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
        check_complexity(source)?;
        let compiled = std::panic::catch_unwind(|| cel::Program::compile(source))
            .map_err(|_| format!("CEL does not compile: `{source}`"))?;
        let program = compiled.map_err(|errs| {
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
        // The cel crate panics (`todo!`) on some programs that compile: a
        // comprehension over something that is neither a list nor a map
        // (`input.n.map(x, x)` with a number), a message literal
        // (`Foo{a: 1}`). Found by fuzzing; a rule's error, not a crash.
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let value = self.program.execute(&ctx).map_err(|e| e.to_string())?;
            value.json().map_err(|e| e.to_string())
        }));
        match run {
            Ok(result) => result.map_err(fail),
            Err(_) => Err(fail(
                "CEL cannot evaluate this: a macro (map, filter, all, exists) over something that is neither a list nor a map, or a message literal".into(),
            )),
        }
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
    /// A URL path: the text as written, each `${...}` value encoded as one
    /// path segment, so that no value can leave the path or add a query.
    UrlPath(Vec<Part>),
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
            Template::Interpolate(parts) | Template::UrlPath(parts) => {
                out.extend(parts.iter().filter_map(|p| match p {
                    Part::Expr(e) => Some(e),
                    Part::Text(_) => None,
                }))
            }
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
            Template::UrlPath(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => s.push_str(t),
                        Part::Expr(e) => {
                            let value = match e.eval(scope)? {
                                Value::String(v) => v,
                                Value::Null => String::new(),
                                other => other.to_string(),
                            };
                            // `%2e%2e` is a dot segment to URL parsers too:
                            // these values cannot be encoded away.
                            if value == "." || value == ".." {
                                return Err(EvalError {
                                    expr: e.source().to_string(),
                                    message: format!("`{value}` cannot be a segment of a URL path"),
                                });
                            }
                            encode_segment(&value, &mut s);
                        }
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

impl Template {
    /// Makes the field `key` of this (object) template a URL path: its text
    /// stays as written and each `${...}` value becomes one path segment,
    /// percent-encoded but for letters, digits, `-`, `.`, `_` and `~` (so
    /// `/`, `?`, `#` and `%` are encoded), and a value of `.` or `..` fails
    /// to render. The text may hold neither `?` nor `#`: query parameters
    /// belong in a separate, form-encoded argument. A field that is absent
    /// is left alone; one that is not a string is an error.
    pub fn url_path_field(&mut self, key: &str) -> Result<(), String> {
        let Template::Object(fields) = self else {
            return Ok(());
        };
        let Some((_, field)) = fields.iter_mut().find(|(k, _)| k == key) else {
            return Ok(());
        };
        let parts = match std::mem::replace(field, Template::Literal(Value::Null)) {
            Template::Literal(Value::String(s)) => vec![Part::Text(s)],
            Template::Expr(e) => vec![Part::Expr(e)],
            Template::Interpolate(parts) | Template::UrlPath(parts) => parts,
            other => {
                *field = other;
                return Err(format!("`{key}` must be a string (a URL path)"));
            }
        };
        for p in &parts {
            if let Part::Text(t) = p
                && let Some(c) = t.chars().find(|c| *c == '?' || *c == '#')
            {
                *field = Template::UrlPath(parts.clone());
                return Err(format!(
                    "`{key}` is a URL path and may not contain `{c}`; put query parameters in `query`"
                ));
            }
        }
        *field = Template::UrlPath(parts);
        Ok(())
    }
}

/// Appends `value` percent-encoded as one URL path segment: every byte but
/// the unreserved characters of RFC 3986 (letters, digits, `-._~`).
fn encode_segment(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
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

    /// Found by fuzzing (fuzz/regressions/expr/panic-*): programs that
    /// compile but made the cel crate panic while evaluating them.
    #[test]
    fn programs_cel_cannot_evaluate_are_errors_not_panics() {
        let input = json!({"n": 1, "s": "t", "list": [1]});
        let scope = Scope {
            input: Some(&input),
            ..Scope::default()
        };
        for source in [
            "input.n.map(x, x)",
            "[1, 23].map(x, x * x.filter(y, y) > 1)",
            "input.s.exists(c, c == 't')",
            "1.all(x, x > 0)",
        ] {
            let e = Expr::compile(source).expect(source);
            let err = e.eval(&scope).expect_err(source);
            assert!(err.message.contains("CEL cannot evaluate"), "{err}");
        }
        if let Ok(e) = Expr::compile("Foo{a: 1}") {
            assert!(e.eval(&scope).is_err());
        }
    }

    /// Found by fuzzing (fuzz/regressions/expr, template, workflow): long
    /// operator chains and conditional chains overflowed the stack in the
    /// CEL parser, aborting the process. They are refused with a message,
    /// on a stack no larger than a tokio worker's.
    #[test]
    fn deep_expressions_are_refused_not_a_stack_overflow() {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let chains = [
                    format!("input{}", ".a".repeat(4000)),
                    format!("state.req{}", "put.req".repeat(4000)),
                    format!("1{}", " + 1".repeat(4000)),
                    format!("has(state.evete{})", ".evete".repeat(4000)),
                    format!("timestamp('x'){}", " + durat".repeat(4000)),
                    format!("{}2", "true ? 1 : ".repeat(100)),
                    format!("1{}", " in 1".repeat(6000)),
                    "\0in".repeat(6000),
                ];
                for source in chains {
                    let err = Expr::compile(&source).expect_err("refused");
                    assert!(err.contains("split it into steps"), "{err}");
                    let t = compile_string(&format!("${{{source}}}"));
                    assert!(t.is_err());
                }
                // Long literals and ordinary rules still compile.
                let literal = format!("'{}' == input.s", "a+b.".repeat(2000));
                assert!(Expr::compile(&literal).is_ok());
                let rule = format!("input.n > 1{}", " && input.n < 100".repeat(40));
                assert!(Expr::compile(&rule).is_ok());
                assert!(Expr::compile(&format!("{}2", "true ? 1 : ".repeat(32))).is_ok());
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
    }

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

    fn path_template(text: &str) -> Result<Template, String> {
        let mut t = Template::compile(&json!({"path": text})).map_err(|e| format!("{e:?}"))?;
        t.url_path_field("path")?;
        Ok(t)
    }

    #[test]
    fn url_path_values_are_one_segment_each() {
        let t = path_template("/v1/sessions/${session.reference}/score").expect("compiles");
        let render = |reference: &str| {
            let session = json!({"reference": reference});
            let scope = Scope {
                session: Some(&session),
                ..Default::default()
            };
            t.render(&scope).map(|v| v["path"].clone())
        };
        for (reference, want) in [
            ("sc_01", "/v1/sessions/sc_01/score"),
            ("../../../admin", "/v1/sessions/..%2F..%2F..%2Fadmin/score"),
            ("x?inj=1&q=2", "/v1/sessions/x%3Finj%3D1%26q%3D2/score"),
            ("a#frag", "/v1/sessions/a%23frag/score"),
            ("50%", "/v1/sessions/50%25/score"),
            ("é ~", "/v1/sessions/%C3%A9%20~/score"),
            ("a..b", "/v1/sessions/a..b/score"),
        ] {
            assert_eq!(
                render(reference).expect("renders"),
                json!(want),
                "{reference}"
            );
        }
        for dots in [".", ".."] {
            let e = render(dots).expect_err("a dot segment is refused");
            assert_eq!(e.expr, "session.reference");
            assert!(e.message.contains("cannot be a segment"), "{e}");
        }
        // A whole-value path is one segment too, and a number its JSON text.
        let whole = path_template("${input.p}").expect("compiles");
        let input = json!({"p": "/admin?x=1"});
        let scope = Scope {
            input: Some(&input),
            ..Default::default()
        };
        assert_eq!(
            whole.render(&scope).expect("renders")["path"],
            json!("%2Fadmin%3Fx%3D1")
        );
    }

    #[test]
    fn url_path_text_may_not_hold_a_query() {
        for text in ["/v1/x?a=1", "/v1/${input.a}?b=2", "/v1/x#top"] {
            let e = path_template(text).expect_err(text);
            assert!(e.contains("put query parameters in `query`"), "{e}");
        }
        let mut t = Template::compile(&json!({"path": {"a": 1}})).expect("compiles");
        assert!(t.url_path_field("path").is_err());
        let mut absent = Template::compile(&json!({"service": "s"})).expect("compiles");
        assert!(absent.url_path_field("path").is_ok());
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
