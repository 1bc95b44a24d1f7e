//! The integration tests: one binary, one module per area.

mod support;

mod console;
mod engine;
mod loader;
mod tree;
