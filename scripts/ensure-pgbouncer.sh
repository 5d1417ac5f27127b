#!/usr/bin/env bash
# Installs PgBouncer (Debian's package) when it is missing, and prints the path of the
# `pgbouncer` binary. Idempotent and quiet when it is there, so CI and the pooler tests
# (aura-testkit's Pgbouncer) call it every time.
#
# Route: `apt-get install pgbouncer` (needs root and apt-get; Debian 12 ships 1.18). The
# package's own service is not used: the tests start their own pgbouncer, as the
# `postgres` OS user (pgbouncer refuses to run as root), on ports of their own.
#
# At most one installation at a time per machine, whatever runs in parallel (test binaries
# do): the install holds an exclusive `flock` on /tmp/aura-ensure-pgbouncer.lock, and a
# caller that had to wait checks again and finds it installed.
#
# Env: AURA_PGBOUNCER overrides the binary (used as is; this script then only checks it).
set -euo pipefail

find_pgbouncer() {
    if [ -n "${AURA_PGBOUNCER:-}" ]; then
        [ -x "$AURA_PGBOUNCER" ] && echo "$AURA_PGBOUNCER"
        return 0
    fi
    command -v pgbouncer 2>/dev/null || { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; } || true
}

found="$(find_pgbouncer)"
if [ -n "$found" ]; then
    echo "$found"
    exit 0
fi
if [ -n "${AURA_PGBOUNCER:-}" ]; then
    echo "ensure-pgbouncer: AURA_PGBOUNCER=$AURA_PGBOUNCER is not an executable" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-pgbouncer: pgbouncer is missing; install it (Debian: apt-get install pgbouncer) or set AURA_PGBOUNCER" >&2
    exit 1
fi

# Serialize the installation (the lock is released when this process exits, even killed).
lock=/tmp/aura-ensure-pgbouncer.lock
exec 9>>"$lock"
if ! flock -n 9; then
    echo "ensure-pgbouncer: waiting for another installation of pgbouncer to finish ($lock)" >&2
    flock -w 1800 9 || { echo "ensure-pgbouncer: gave up waiting for $lock after 30 min" >&2; exit 1; }
    found="$(find_pgbouncer)"
    if [ -n "$found" ]; then
        echo "$found"
        exit 0
    fi
fi

echo "ensure-pgbouncer: installing Debian's pgbouncer" >&2
export DEBIAN_FRONTEND=noninteractive
# apt-get's own lock: wait for it rather than fail (another apt-get may be running).
apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends pgbouncer >&2
found="$(find_pgbouncer)"
if [ -z "$found" ]; then
    echo "ensure-pgbouncer: apt-get installed pgbouncer but no pgbouncer binary was found" >&2
    exit 1
fi
echo "$found"
