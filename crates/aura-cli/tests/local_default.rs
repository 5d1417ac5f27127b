//! The embedded default as a new user meets it: nothing configured, `aura dev up`, then
//! `aura db ping`, `migrate` (twice) and `status` on the project-local cluster, and
//! `aura dev down`. It runs a throwaway cluster of its own (`AURA_LOCALPG_DIR`,
//! `AURA_LOCALPG_PORT`), so the workspace cluster the other tests share is never stopped.

mod common;

use std::net::TcpStream;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use aura_db::vars;
use common::{applied_count, text};

/// A cluster root under the temp dir (traversable by the `postgres` user) and a free port;
/// dropping it stops the cluster and removes the root, pass or fail.
struct Scratch {
    root: PathBuf,
    port: u16,
}

impl Scratch {
    fn new() -> Scratch {
        let pid = std::process::id();
        let root = std::env::temp_dir().join(format!("aura-cli-local-default-{pid}"));
        if root.exists() {
            std::fs::remove_dir_all(&root).expect("remove a leftover root");
        }
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&root)
            .expect("create the cluster root");
        // Above the 20000..=29999 workspace clusters derive their ports from, below the
        // ephemeral range.
        let start = 31000 + u16::try_from(pid % 700).expect("small");
        let port = (start..32700)
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free port for the scratch cluster");
        Scratch { root, port }
    }

    /// `aura <args>` with none of our variables set but the scratch cluster's location.
    fn aura(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aura"));
        for var in vars::ALL {
            cmd.env_remove(var);
        }
        cmd.env_remove(vars::AURA_RESET_YES)
            .env_remove("RUST_LOG")
            .env_remove("AURA_TEST_DATABASE_URL")
            .env("AURA_LOCALPG_DIR", &self.root)
            .env("AURA_LOCALPG_PORT", self.port.to_string())
            .args(args)
            .output()
            .expect("run aura")
    }

    fn accepts_connections(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.aura(&["dev", "down"]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn with_nothing_configured_dev_up_then_db_commands_run_on_the_local_cluster() {
    let scratch = Scratch::new();
    let out = scratch.aura(&["dev", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with("not initialised"));

    let up = ok(&scratch.aura(&["dev", "up"]), "dev up");
    assert!(
        up.starts_with(&format!(
            "local cluster running on 127.0.0.1:{}",
            scratch.port
        )),
        "{up}"
    );
    assert!(up.contains("postgres://aura_app:***@"), "{up}");
    assert!(scratch.accepts_connections());

    let out = scratch.aura(&["db", "ping"]);
    let ping = ok(&out, "db ping");
    assert!(ping.starts_with("ok: postgres://aura_app:***@"), "{ping}");
    assert!(
        ping.trim_end()
            .ends_with(" ms; session: plaintext (no TLS)"),
        "{ping}"
    );
    assert!(
        text(&out.stderr).contains("used the local cluster"),
        "{}",
        text(&out.stderr)
    );

    let first = ok(&scratch.aura(&["db", "migrate"]), "first migrate");
    assert_eq!(
        applied_count(&first),
        aura_db::Migrations::embedded().len(),
        "{first}"
    );
    let again = ok(&scratch.aura(&["db", "migrate"]), "second migrate");
    assert!(again.contains("up to date"), "{again}");
    assert_eq!(applied_count(&again), 0, "{again}");
    ok(&scratch.aura(&["db", "status"]), "status");

    // An error on the local cluster is still one line on stderr, saying where it happened.
    let out = scratch.aura(&["db", "reset", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("AURA_RESET_YES"), "{stderr}");
    assert!(stderr.contains("local cluster"), "{stderr}");

    let status = ok(&scratch.aura(&["dev", "status"]), "dev status");
    assert!(status.starts_with("running: pid "), "{status}");

    let down = ok(&scratch.aura(&["dev", "down"]), "dev down");
    assert_eq!(down.trim_end(), "local cluster stopped");
    assert!(!scratch.accepts_connections(), "the server still listens");
    let out = scratch.aura(&["dev", "status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).starts_with("stopped"),
        "{}",
        text(&out.stdout)
    );
}
