//! aura-store against a real database: each test owns a database cloned from the migrated
//! template (aura-testkit). One test binary, one module per concern.

mod common;

mod caching;
mod close;
mod commit_failures;
mod conversation_edit;
mod conversations;
mod database_defaults;
mod dead_server;
mod dyn_traits;
mod faults;
mod idempotency;
mod invalid_input;
mod invariants;
mod killed_backends;
mod listing;
mod not_found;
mod pgbouncer;
mod requests;
mod restart;
mod retries;
mod run_listings;
mod runs;
mod tls;
mod turn_data;
mod turn_pages;
mod turns;
mod unavailable;
