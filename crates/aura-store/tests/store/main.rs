//! aura-store against a real database: each test owns a database cloned from the migrated
//! template (aura-testkit). One test binary, one module per concern.

mod common;

mod caching;
mod close;
mod conversations;
mod dyn_traits;
mod faults;
mod idempotency;
mod invalid_input;
mod listing;
mod not_found;
mod pgbouncer;
mod requests;
mod runs;
mod tls;
mod turns;
mod unavailable;
