//! The `input` section (a JSON Schema over the session input) and the check
//! that expressions read only the fields it declares.

use super::{Parser, suggest};
use crate::expr::Expr;
use crate::workflow::input::InputSchema;
use crate::workflow::yaml::to_json;
use marked_yaml::Node;

impl Parser<'_> {
    /// `at`: the `input` key, where problems with the schema as a whole
    /// are reported.
    pub(super) fn input_section(&mut self, at: (usize, usize), node: &Node) -> Option<InputSchema> {
        if node.as_mapping().is_none() {
            self.err(
                at,
                "`input` must be a JSON Schema written as a mapping (`type: object` with `properties`)",
            );
            return None;
        }
        match InputSchema::compile(to_json(node)) {
            Ok(schema) => {
                self.input_fields = Some(schema.fields().to_vec());
                Some(schema)
            }
            Err(msg) => {
                self.err(at, msg);
                None
            }
        }
    }

    /// With an `input` section, `input.<field>` must name a declared field:
    /// a typo, or a field the caller is never asked for, is found here
    /// instead of failing a session half-way.
    pub(super) fn check_input_reads(&mut self, e: &Expr, at: (usize, usize)) {
        let Some(fields) = &self.input_fields else {
            return;
        };
        let mut unknown: Vec<String> = Vec::new();
        for path in e.read_paths() {
            let Some(field) = path
                .strip_prefix("input.")
                .and_then(|rest| rest.split('.').next())
            else {
                continue;
            };
            if !fields.iter().any(|f| f == field) && !unknown.iter().any(|u| u == field) {
                unknown.push(field.to_string());
            }
        }
        for field in unknown {
            let message = {
                let declared: Vec<&str> = self
                    .input_fields
                    .iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                let list = if declared.is_empty() {
                    "none".to_string()
                } else {
                    declared.join(", ")
                };
                format!(
                    "`{}` reads `input.{field}`, which the `input` schema does not declare (declared: {list}){}",
                    e.source(),
                    suggest(&field, &declared)
                )
            };
            self.err(at, message);
        }
    }
}
