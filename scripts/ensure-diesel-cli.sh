#!/usr/bin/env bash
# Installs diesel_cli (Postgres only) when it is missing or not the pinned version.
# Idempotent and quiet when the right version is already installed, so CI and the schema
# scripts call it every time.
#
# Route: `cargo install diesel_cli --no-default-features --features postgres --locked`,
# linked against the system libpq (Debian: libpq-dev, installed here with apt-get when
# missing and we are root). Without libpq-dev and without root, it falls back to the
# `postgres-bundled` feature (libpq built from source by pq-src; needs a C compiler and
# OpenSSL headers).
#
# At most one installation at a time per cargo home (where the binary goes, so at most one
# per machine and user), whatever runs in parallel (the schema-check tests do): the install
# holds an exclusive `flock` on $CARGO_HOME/.aura-ensure-diesel-cli.lock, and a caller that
# had to wait checks the version again and finds it installed.
#
# Env: DIESEL_CLI_VERSION overrides the pinned version (schema.rs output is compared
# byte for byte, so every machine must print it with the same diesel_cli).
set -euo pipefail

version="${DIESEL_CLI_VERSION:-2.3.14}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
cargo_bin="$cargo_home/bin"
case ":$PATH:" in *":$cargo_bin:"*) ;; *) export PATH="$cargo_bin:$PATH" ;; esac

# `diesel --version` prints "diesel" then " Version: 2.3.14" on the next line.
installed_version() {
    diesel --version 2>/dev/null | awk '$1 == "Version:" {print $2}' || true
}
installed="$(installed_version)"
if [ "$installed" = "$version" ]; then
    exit 0
fi

# Serialize the installation (the lock is released when this process exits, even killed).
if command -v flock >/dev/null 2>&1; then
    mkdir -p "$cargo_home"
    lock="$cargo_home/.aura-ensure-diesel-cli.lock"
    exec 9>>"$lock"
    if ! flock -n 9; then
        echo "ensure-diesel-cli: waiting for another installation of diesel_cli to finish ($lock)" >&2
        flock -w 3600 9 || { echo "ensure-diesel-cli: gave up waiting for $lock after 1 h" >&2; exit 1; }
    fi
    # Another caller may have installed it between the check above and the lock.
    installed="$(installed_version)"
    if [ "$installed" = "$version" ]; then
        echo "ensure-diesel-cli: diesel_cli $version was installed meanwhile" >&2
        exit 0
    fi
else
    echo "ensure-diesel-cli: flock (util-linux) not found: installing without a lock" >&2
fi

have_libpq() {
    # The linker needs libpq.so (the -dev symlink), not only the runtime libpq.so.5.
    if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libpq 2>/dev/null; then
        return 0
    fi
    [ -e /usr/lib/x86_64-linux-gnu/libpq.so ] || [ -e /usr/lib/libpq.so ] ||
        [ -n "$(find /usr/lib -maxdepth 3 -name libpq.so 2>/dev/null | head -n1)" ]
}

feature=postgres
if ! have_libpq; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "ensure-diesel-cli: installing libpq-dev" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq libpq-dev >&2
    else
        echo "ensure-diesel-cli: libpq-dev is missing; building libpq from source (postgres-bundled)" >&2
        feature=postgres-bundled
    fi
fi

echo "ensure-diesel-cli: installing diesel_cli $version (${installed:-not installed} found; feature $feature)" >&2
cargo install diesel_cli --version "=$version" --no-default-features --features "$feature" \
    --locked --quiet --force >&2
diesel --version >/dev/null
