//! `{{…}}` templating of a script step's message and data.
//!
//! A placeholder names `input.a.b` (a path into the trigger's `input`;
//! numeric segments index arrays), `requestId`, `sessionId` or `flowId`.
//! Inside a longer string a value is inserted as text (strings as they are,
//! other JSON values serialised); a string that is exactly one placeholder
//! becomes the value itself, keeping its JSON type. Whatever does not
//! resolve becomes the empty string.

use serde_json::Value;

/// What placeholders can name.
pub(super) struct Context<'a> {
    pub input: &'a Value,
    pub request_id: &'a str,
    pub session_id: &'a str,
    pub flow_id: &'a str,
}

impl Context<'_> {
    fn lookup(&self, path: &str) -> Option<Value> {
        let mut segs = path.split('.');
        match segs.next()? {
            "input" => {
                let mut v = self.input;
                for seg in segs {
                    v = match v {
                        Value::Object(m) => m.get(seg)?,
                        Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                        _ => return None,
                    };
                }
                Some(v.clone())
            }
            "requestId" | "request_id" => Some(Value::from(self.request_id)),
            "sessionId" | "session_id" => Some(Value::from(self.session_id)),
            "flowId" | "flow_id" => Some(Value::from(self.flow_id)),
            _ => None,
        }
    }

    /// `value` with every string templated.
    pub fn render(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => self.render_string(s),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.render(v)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), self.render(v))).collect())
            }
            other => other.clone(),
        }
    }

    /// A string templated as text (for messages).
    pub fn render_text(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start + 2..].find("}}") else {
                break;
            };
            out.push_str(&rest[..start]);
            let path = rest[start + 2..start + 2 + len].trim();
            match self.lookup(path) {
                Some(Value::String(v)) => out.push_str(&v),
                Some(Value::Null) | None => {}
                Some(v) => out.push_str(&v.to_string()),
            }
            rest = &rest[start + 2 + len + 2..];
        }
        out.push_str(rest);
        out
    }

    fn render_string(&self, s: &str) -> Value {
        let t = s.trim();
        if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
            && !inner.contains("{{")
            && !inner.contains("}}")
        {
            return match self.lookup(inner.trim()) {
                Some(Value::Null) | None => Value::from(""),
                Some(v) => v,
            };
        }
        Value::String(self.render_text(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(input: &Value) -> Context<'_> {
        Context {
            input,
            request_id: "r1",
            session_id: "s1",
            flow_id: "f1",
        }
    }

    #[test]
    fn text_and_values() {
        let input = json!({"name": "Ada", "n": 3, "addr": {"city": "London"}, "tags": ["a", "b"]});
        let c = ctx(&input);
        assert_eq!(
            c.render_text(
                "hi {{input.name}} from {{ input.addr.city }} ({{input.n}}) {{requestId}}"
            ),
            "hi Ada from London (3) r1"
        );
        assert_eq!(c.render_text("[{{input.missing}}] [{{nope}}]"), "[] []");
        assert_eq!(
            c.render_text("{{input.tags.1}} {{ unterminated"),
            "b {{ unterminated"
        );
        assert_eq!(
            c.render(&json!({"whole": "{{input.addr}}", "n": "{{input.n}}", "gone": "{{input.x.y}}", "list": ["{{input.name}}!"], "k": 1})),
            json!({"whole": {"city": "London"}, "n": 3, "gone": "", "list": ["Ada!"], "k": 1})
        );
    }
}
