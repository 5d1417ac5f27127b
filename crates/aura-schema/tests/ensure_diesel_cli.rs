//! `scripts/ensure-diesel-cli.sh` installs diesel_cli at most once, however many callers run
//! at once (the schema-check tests do): the second caller waits for the first one's lock,
//! then finds the pinned version installed and installs nothing.
//!
//! The script runs against a scratch cargo home with a stand-in `cargo` on PATH that records
//! each `cargo install` and "installs" a `diesel` that prints the pinned version, so the test
//! takes seconds and never touches the real ~/.cargo.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod script_support;

use script_support::{Scratch, describe, log_lines, script, write_executable};

const VERSION: &str = "9.9.9-test";

/// A scratch directory with `bin/cargo` (records installs in `installs.log`, waits for the
/// file `release`, then writes `home/bin/diesel`) and `bin/pkg-config` (libpq "is there").
struct Fake {
    dir: Scratch,
}

impl Fake {
    fn new() -> Fake {
        let dir = Scratch::new("aura-ensure-diesel");
        std::fs::create_dir_all(dir.join("bin")).expect("mkdir bin");
        std::fs::create_dir_all(dir.join("home")).expect("mkdir home");
        let d = dir.display();
        write_executable(
            &dir.join("bin/cargo"),
            &format!(
                r#"#!/bin/sh
echo "$$ $*" >> "{d}/installs.log"
i=0
while [ ! -e "{d}/release" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
mkdir -p "$CARGO_HOME/bin"
printf '#!/bin/sh\necho diesel\necho " Version: {VERSION}"\n' > "$CARGO_HOME/bin/diesel.tmp"
chmod 755 "$CARGO_HOME/bin/diesel.tmp"
mv "$CARGO_HOME/bin/diesel.tmp" "$CARGO_HOME/bin/diesel"
"#
            ),
        );
        write_executable(&dir.join("bin/pkg-config"), "#!/bin/sh\nexit 0\n");
        Fake { dir }
    }

    fn spawn(&self) -> Child {
        Command::new("bash")
            .arg(script("ensure-diesel-cli.sh"))
            .env("CARGO_HOME", self.dir.join("home"))
            .env("DIESEL_CLI_VERSION", VERSION)
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.dir.join("bin").display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ensure-diesel-cli.sh")
    }

    fn installs(&self) -> Vec<String> {
        log_lines(&self.dir.join("installs.log"))
    }
}

#[test]
fn concurrent_callers_install_diesel_cli_once() {
    let fake = Fake::new();
    let first = fake.spawn();
    // Wait until the first caller holds the lock and is inside `cargo install`.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.installs().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first caller never installed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = fake.spawn();
    // Let the second caller reach the lock, then let the installation finish.
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(fake.dir.join("release"), "").expect("release");

    let first = first.wait_with_output().expect("first");
    let second = second.wait_with_output().expect("second");
    assert!(first.status.success(), "first: {}", describe(&first));
    assert!(second.status.success(), "second: {}", describe(&second));
    assert_eq!(fake.installs().len(), 1, "installs: {:?}", fake.installs());
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("installing diesel_cli 9.9.9-test"),
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

    // Installed: a later call is quiet and installs nothing.
    let again = fake.spawn().wait_with_output().expect("again");
    assert!(again.status.success(), "again: {}", describe(&again));
    assert!(again.stderr.is_empty(), "again: {}", describe(&again));
    assert_eq!(fake.installs().len(), 1);
}
