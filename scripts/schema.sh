#!/usr/bin/env bash
# Regenerates crates/aura-schema/src/schema.rs from migrations/ (`just schema`), or with
# --check fails when it would change (`just check-schema`, the drift check CI runs).
#
# How: a scratch database on the project's local cluster (`aura dev up` starts the cluster
# and, with POSTGRES_DB set to the scratch name, creates that database and bootstraps the
# aura_app/aura_migrate roles and the schema `aura` owned by aura_migrate, exactly as for
# the real database). `diesel migration run` then applies migrations/ as the migrate role
# (search_path aura, so the tables land in `aura` with the right owner) and writes the
# schema file that diesel.toml names; with --check, `--locked-schema` makes it compare
# instead, print the diff and fail. The scratch database is dropped on exit.
#
# Works on a fresh clone as it is: installs diesel_cli if missing
# (scripts/ensure-diesel-cli.sh) and ignores any configured database.
#
# Environment:
#   AURA_SCHEMA_ROOT  directory holding diesel.toml and the migrations/ and schema file it
#                     names (default: the repository); tests point it at a copy.
#   AURA_CLI          path to a built `aura` binary (default: `cargo run -q -p aura-cli --`).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "${AURA_SCHEMA_ROOT:-$repo}" && pwd)"
mode=write
case "${1:-}" in
    --check) mode=check ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

config="$root/diesel.toml"
migrations="$root/migrations"
[ -f "$config" ] || { echo "schema: $config not found" >&2; exit 2; }
[ -d "$migrations" ] || { echo "schema: $migrations not found" >&2; exit 2; }

bash "$repo/scripts/ensure-diesel-cli.sh"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# The scratch database lives on the local cluster whatever the caller has configured:
# clear what would make aura-cli use (or print) another database.
unset POSTGRES_HOST POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB \
    AURA_DB_URL AURA_DB_MIGRATE_URL AURA_DB_BOOTSTRAP_URL AURA_DB_PASSWORD \
    AURA_DB_APP_ROLE AURA_DB_MIGRATE_ROLE AURA_DB_SCHEMA DATABASE_URL

scratch="aura_schema_$(date +%s)_$$_${RANDOM}"

aura() {
    # From the repository, so that `aura` finds its checkout (and its local cluster).
    if [ -n "${AURA_CLI:-}" ]; then
        (cd "$repo" && POSTGRES_DB="$scratch" "$AURA_CLI" "$@")
    else
        (cd "$repo" && POSTGRES_DB="$scratch" cargo run -q -p aura-cli -- "$@")
    fi
}

drop_scratch() {
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        PGPASSWORD="$POSTGRES_PASSWORD" PGCONNECT_TIMEOUT=5 psql -X -q -w \
            -h "$POSTGRES_HOST" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d postgres \
            -c "DROP DATABASE IF EXISTS \"$scratch\" WITH (FORCE)" >/dev/null 2>&1 ||
            echo "schema: could not drop the scratch database $scratch" >&2
    fi
}

# `dev env` starts the cluster if needed and prints export lines for POSTGRES_DB=$scratch.
env_lines="$(aura dev env)"
eval "$env_lines"
trap drop_scratch EXIT
aura dev up >/dev/null

args=(migration run --config-file "$config" --migration-dir "$migrations"
    --database-url "$AURA_DB_MIGRATE_URL")
cd "$root"
if [ "$mode" = check ]; then
    if ! diesel "${args[@]}" --locked-schema >&2; then
        echo "check-schema: the schema file diesel.toml names is out of date with migrations/ (diff above);" \
            "run \`just schema\` (scripts/schema.sh) and commit the result" >&2
        exit 1
    fi
    echo "check-schema: schema file matches migrations/"
else
    diesel "${args[@]}" >&2
    echo "schema: regenerated from migrations/ (see \`git diff\`)"
fi
