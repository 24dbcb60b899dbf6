//! The workflow language: YAML files with an id, a version and named steps.
//! `parse` turns source text into a validated [`Workflow`] or every problem
//! found, each with `line:col`; `schema` is the language's JSON Schema.

mod diagnostics;
mod graph;
mod input;
mod model;
mod parse;
mod schema;
mod yaml;

pub use diagnostics::{Diagnostic, Diagnostics};
pub use graph::{Edge, Graph, Node, graph_of};
pub use input::{InputError, InputSchema};
pub use model::*;
pub use parse::parse;
pub use schema::json_schema;
/// YAML to JSON with YAML 1.2 core-schema scalars (for files beside workflows).
pub use yaml::to_json as yaml_to_json;
