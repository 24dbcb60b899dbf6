//! Gangway's domain: the workflow language (parse, validate, JSON Schema), CEL
//! expressions and templates, and the engine's pure state machine
//! `(state, input, now) -> (state, effects, records)`.
//!
//! Nothing here does I/O or reads the clock: time is an input. That keeps the
//! engine testable with property tests and replayable.

pub mod catalog;
pub mod engine;
pub mod expr;
pub mod outcome;
pub mod workflow;

pub use outcome::{Outcome, SessionStatus};
