//! Small helpers over marked-yaml's positioned nodes.

use super::diagnostics::Diagnostic;
use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use serde_json::Value;

/// 1-based `(line, col)` of a node.
pub fn pos(node: &Node) -> (usize, usize) {
    node.span()
        .start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((1, 1))
}

pub fn scalar_pos(node: &MarkedScalarNode) -> (usize, usize) {
    node.span()
        .start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((1, 1))
}

pub fn kind_name(node: &Node) -> &'static str {
    match node {
        Node::Scalar(_) => "a scalar",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

/// Converts a node to JSON; plain (unquoted) scalars become booleans,
/// numbers or null where YAML 1.2's core schema says so.
pub fn to_json(node: &Node) -> Value {
    match node {
        Node::Scalar(s) => scalar_to_json(s),
        Node::Sequence(seq) => Value::Array(seq.iter().map(to_json).collect()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
                .collect(),
        ),
    }
}

fn scalar_to_json(s: &MarkedScalarNode) -> Value {
    let text = s.as_str();
    if !s.may_coerce() {
        return Value::String(text.to_string());
    }
    match text {
        "null" | "~" | "" => return Value::Null,
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = text.parse::<f64>()
        && f.is_finite()
        && text.chars().any(|c| c.is_ascii_digit())
    {
        return Value::from(f);
    }
    Value::String(text.to_string())
}

pub fn get<'a>(map: &'a MarkedMappingNode, key: &str) -> Option<&'a Node> {
    map.get_node(key)
}

/// Deepest nesting of mappings and sequences a workflow may have. The YAML
/// loader recurses once per level: a few thousand levels (`- - - ...`,
/// `[[[...`) overflowed a 2 MiB tokio worker stack and aborted the server
/// (found by fuzzing). Workflows nest about ten deep.
pub const MAX_DEPTH: usize = 64;

/// Measures nesting on the parser's event stream (not recursive), before
/// the recursive loader runs. Scan errors are left to the loader to report.
pub(super) fn too_deep(source: &str) -> Option<Diagnostic> {
    use yaml_rust2::Event;
    let mut parser = yaml_rust2::parser::Parser::new_from_str(source);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::SequenceStart(..) | Event::MappingStart(..), m)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(Diagnostic {
                        line: m.line().max(1),
                        col: m.col().max(1),
                        message: format!(
                            "nested more than {MAX_DEPTH} levels deep; flatten the document"
                        ),
                    });
                }
            }
            Ok((Event::SequenceEnd | Event::MappingEnd, _)) => depth = depth.saturating_sub(1),
            Ok((Event::StreamEnd, _)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
