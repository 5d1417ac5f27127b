#!/usr/bin/env bash
# Runs the test suite on PostgreSQL 18: a local cluster of its own, apart from the default
# one (which runs the machine's Postgres, 15 on Debian 12), made with the binaries
# scripts/ensure-pg18.sh installs, and stopped again at the end, whatever happened.
#
#   scripts/test-pg18.sh                       # cargo test --workspace
#   scripts/test-pg18.sh -p aura-store         # any `cargo test` arguments instead
#
# The cluster's folder: AURA_PG18_LOCALPG_DIR if set, else the default cluster's folder
# with `-18` appended (`.aura/pg-18` in the checkout, or beside it under
# /var/lib/aura-localpg/ when the default cluster was relocated there: run as root, the
# `postgres` OS user must reach it). Its port is derived from that path, as for any
# cluster. AURA_TEST_DATABASE_URL is ignored here: the point is the server these binaries
# run.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$(scripts/ensure-pg18.sh)"
aura() { cargo run -q -p aura-cli -- "$@"; }

if [ -n "${AURA_PG18_LOCALPG_DIR:-}" ]; then
    dir="$AURA_PG18_LOCALPG_DIR"
else
    # `dev status` names the default cluster's folder: "... (data in <dir>)" or
    # "... data in <dir>)", wherever it lives (relocated or not).
    default_root="$(env -u AURA_LOCALPG_DIR -u AURA_LOCALPG_PORT -u AURA_PG_BIN_DIR \
        cargo run -q -p aura-cli -- dev status | sed -n 's/.*data in \(.*\)$/\1/p' | sed 's/)$//')" || true
    if [ -z "$default_root" ]; then
        echo "test-pg18: cannot tell where the default local cluster lives (aura dev status)" >&2
        exit 1
    fi
    dir="${default_root%/}-18"
fi

unset AURA_TEST_DATABASE_URL AURA_LOCALPG_PORT
export AURA_PG_BIN_DIR="$bin" AURA_LOCALPG_DIR="$dir"

stop() {
    local rc=$?
    echo "test-pg18: stopping the PostgreSQL 18 cluster ($dir)" >&2
    # Stops the cluster's streaming replica (aura-testkit's Replica) first, then the cluster.
    aura dev down || true
    # The test clusters the suite starts beside it: TLS-only (aura-testkit's TlsCluster)
    # and restartable (RestartCluster).
    for sibling in "$dir-tls" "$dir-tls-expired" "$dir-restart"; do
        if [ -d "$sibling" ]; then
            AURA_LOCALPG_DIR="$sibling" aura dev down || true
        fi
    done
    if pgrep -f "$dir(-tls|-tls-expired|-restart|-replica)?/data" >/dev/null; then
        echo "test-pg18: postgres processes of $dir are still running" >&2
        exit 1
    fi
    exit "$rc"
}
trap stop EXIT

aura dev up >&2
major="$(cat "$dir/data/PG_VERSION")"
if [ "$major" != 18 ]; then
    echo "test-pg18: the cluster in $dir is PostgreSQL $major, not 18 (remove the folder to start over)" >&2
    exit 1
fi
echo "test-pg18: $("$bin/postgres" -V) from $bin, cluster in $dir" >&2

if [ "$#" = 0 ]; then
    set -- --workspace
fi
cargo test "$@"
