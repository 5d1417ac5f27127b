//! End to end: the `aura` binary and the library crates together, on databases of the
//! project's local cluster (or `AURA_TEST_DATABASE_URL`), as a deployment uses them.

mod deploy;
mod downstream;
mod main_job_races;
mod managed;
