//! `retry:` of a call step: run the call again, backing off, while a
//! condition over its result holds.

use super::{DEFAULT_RETRY_EVERY_MS, DEFAULT_RETRY_MAX_MS, Parser};
use crate::workflow::model::RetrySpec;
use crate::workflow::yaml::{get, pos};
use marked_yaml::Node;

impl Parser<'_> {
    pub(super) fn call_retry(&mut self, node: &Node) -> Option<RetrySpec> {
        let Some(map) = node.as_mapping() else {
            self.err(
                pos(node),
                "`retry` must be a mapping with `while` (a CEL condition over `result`), `every` and `max_every`",
            );
            return None;
        };
        self.unknown_keys(map, &["while", "every", "max_every"], "retry");
        let condition = match get(map, "while") {
            Some(n) => self.expr_node(n, &["input", "state", "session", "result"]),
            None => {
                self.err(
                    pos(node),
                    "`retry` needs `while`: the CEL condition over `result` under which the call runs again",
                );
                None
            }
        };
        let every_ms = self
            .duration(map, "every")
            .unwrap_or(DEFAULT_RETRY_EVERY_MS);
        let max_every_ms = self
            .duration(map, "max_every")
            .unwrap_or(DEFAULT_RETRY_MAX_MS)
            .max(every_ms);
        Some(RetrySpec {
            condition: condition?,
            every_ms,
            max_every_ms,
        })
    }
}
