//! Validation problems with their position in the source file.

use std::fmt;

/// One problem at `line:col` (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every problem found in one file, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Renders `file:line:col: message`, one per line.
    pub fn render(&self, file: &str) -> String {
        self.0
            .iter()
            .map(|d| format!("{file}:{}:{}: {}", d.line, d.col, d.message))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("<workflow>"))
    }
}

impl std::error::Error for Diagnostics {}
