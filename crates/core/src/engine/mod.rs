//! The engine's pure core: `apply(workflow, context, state, input, now)`
//! returns the next state, the effects to run (provider calls, timers, polls,
//! customer notifications) and timeline records. The runtime commits all three
//! in one transaction; nothing here touches I/O or the clock.

mod apply;
mod retry;
mod types;

pub use apply::apply;
pub use types::*;

#[cfg(test)]
mod tests;
