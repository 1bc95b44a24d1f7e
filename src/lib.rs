//! icp-sms-doctor: a support bot for the SMS verification step (短信核验) of mainland-China ICP filings.
//!
//! Modules are public where the binary, the tests or the benches use them;
//! an item a module keeps for the crate is `pub(crate)` (`unreachable_pub`
//! holds it to that).

#![warn(unreachable_pub)]

pub mod app;
pub mod callback;
pub(crate) mod cases;
pub mod clock;
pub mod config;
pub mod console;
pub mod conversation;
pub mod engine;
pub mod eval;
pub mod lang;
pub mod markup;
pub mod memory;
pub(crate) mod metrics;
pub mod open;
pub mod redact;
pub mod reminders;
pub mod stats;
pub mod store;
pub mod telegram;
pub mod tree;

#[cfg(test)]
mod doc_claims;
#[cfg(test)]
#[path = "../tests/redis_server.rs"]
mod redis_server;
#[cfg(test)]
mod suite;

use std::path::Path;

pub use engine::{Event, Reply, Session, step};
pub use lang::Lang;
pub use tree::Tree;
pub use tree::report::LoadError;

/// Loads the dialogue from `dir`, or the copy compiled into the binary.
pub fn load_tree(dir: Option<&Path>) -> Result<Tree, LoadError> {
    let sources = match dir {
        Some(dir) => tree::load::read_dir(dir)?,
        None => tree::load::embedded(),
    };
    tree::load::load(&sources)
}
