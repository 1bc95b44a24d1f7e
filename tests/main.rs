//! The integration tests: one binary, one module per area.

mod fake_api;
mod faulty;
mod http;
mod redis_server;
mod scene;
mod support;

mod binary;
mod bot;
mod case_webhook;
mod cases;
mod categories;
mod chaos;
mod console;
mod dashboards;
mod delivery;
mod desk;
mod docs;
mod engine;
mod expiry;
mod faults;
mod fuzz;
mod graph;
mod health;
mod inbox;
mod instances;
mod listener;
mod loader;
mod photos;
mod properties;
mod reload;
mod reminders;
mod routing;
mod stats;
mod tree;
mod webhook;
