//! Where `aura` puts the local cluster with nothing configured, as a new user meets it: the
//! checkout is found from the current directory (not from where the binary was built), a
//! checkout under a directory the `postgres` OS user cannot traverse still migrates (as root,
//! its cluster lives in a reachable directory of its own, said once), and a bad setting
//! fails before any cluster is made. Each test is a scratch checkout (a directory with a
//! workspace `Cargo.toml`) with its own port; dropping it stops its cluster and removes it.

mod common;

use std::net::TcpStream;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aura_db::vars;
use common::{applied_count, text};

fn is_root() -> bool {
    std::fs::metadata("/proc/self").expect("self").uid() == 0
}

struct Checkout {
    /// The directory holding the checkout (mode as the test asks).
    parent: PathBuf,
    /// The checkout: `<parent>/aura`, with a workspace `Cargo.toml` and `crates/cli/`.
    dir: PathBuf,
    port: u16,
}

impl Checkout {
    fn new(tag: &str, parent_mode: u32) -> Checkout {
        let pid = std::process::id();
        let parent = std::env::temp_dir().join(format!("aura-cli-checkout-{tag}-{pid}"));
        if parent.exists() {
            std::fs::remove_dir_all(&parent).expect("remove a leftover checkout");
        }
        std::fs::DirBuilder::new()
            .mode(parent_mode)
            .create(&parent)
            .expect("create the parent");
        std::fs::set_permissions(
            &parent,
            std::os::unix::fs::PermissionsExt::from_mode(parent_mode),
        )
        .expect("chmod the parent");
        let dir = parent.join("aura");
        std::fs::create_dir_all(dir.join("crates/cli")).expect("create the checkout");
        std::fs::write(
            dir.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\"]\n",
        )
        .expect("write Cargo.toml");
        std::fs::write(
            dir.join("crates/cli/Cargo.toml"),
            "[package]\nname = \"cli\"\n",
        )
        .expect("write a member's Cargo.toml");
        // Above the 20000..=29999 checkouts derive their ports from, below the ephemeral
        // range, away from local_default.rs's 31000.. scratch ports.
        let start = 30300 + u16::try_from(pid % 600).expect("small");
        let port = (start..31000)
            .chain(30000..start)
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free port");
        Checkout { parent, dir, port }
    }

    /// `aura <args>` run from `cwd` with none of our variables set but the port and `env`.
    fn aura_in(&self, cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aura"));
        for var in vars::ALL {
            cmd.env_remove(var);
        }
        cmd.env_remove(vars::AURA_RESET_YES)
            .env_remove("RUST_LOG")
            .env_remove("AURA_TEST_DATABASE_URL")
            .env_remove("AURA_LOCALPG_DIR")
            .env("AURA_LOCALPG_PORT", self.port.to_string())
            .envs(env.iter().copied())
            .current_dir(cwd)
            .args(args)
            .output()
            .expect("run aura")
    }

    fn aura(&self, args: &[&str]) -> Output {
        self.aura_in(&self.dir, &[], args)
    }

    /// The cluster root `aura dev status` names when run from the checkout.
    fn root(&self) -> PathBuf {
        data_in(&self.aura(&["dev", "status"]))
    }

    fn accepts_connections(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let root = self.root();
        let _ = self.aura(&["dev", "down"]);
        if root.starts_with(aura_localpg::RELOCATION_BASE) {
            let _ = std::fs::remove_dir_all(&root);
        }
        let _ = std::fs::remove_dir_all(&self.parent);
    }
}

/// The path after "data in " in `aura dev status`'s output.
fn data_in(out: &Output) -> PathBuf {
    let stdout = text(&out.stdout);
    let (_, rest) = stdout
        .split_once("data in ")
        .unwrap_or_else(|| panic!("no `data in` in: {stdout}"));
    PathBuf::from(rest.trim_end().trim_end_matches(')'))
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
fn the_cluster_is_the_checkouts_found_from_the_current_directory() {
    let checkout = Checkout::new("find", 0o755);
    // From a member crate's directory: the workspace root's `.aura/pg`, not the folder this
    // binary was built in.
    let out = checkout.aura_in(&checkout.dir.join("crates/cli"), &[], &["dev", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with("not initialised"));
    assert_eq!(data_in(&out), checkout.dir.join(".aura/pg"));

    // Outside any checkout: the user's data directory.
    let outside = checkout.parent.join("elsewhere");
    std::fs::create_dir(&outside).expect("mkdir");
    let home = checkout.parent.join("home");
    let home_str = home.to_str().expect("utf-8");
    let out = checkout.aura_in(
        &outside,
        &[("HOME", home_str), ("XDG_DATA_HOME", "")],
        &["dev", "status"],
    );
    assert_eq!(data_in(&out), home.join(".local/share/aura/pg"));
    let out = checkout.aura_in(
        &outside,
        &[("HOME", home_str), ("XDG_DATA_HOME", "/xdg/data")],
        &["dev", "status"],
    );
    assert_eq!(data_in(&out), Path::new("/xdg/data/aura/pg"));
    assert!(!home.exists(), "dev status creates nothing");
}

#[test]
fn a_checkout_under_a_private_directory_migrates() {
    let checkout = Checkout::new("private", 0o700);
    let out = checkout.aura(&["db", "migrate"]);
    let first = ok(&out, "first migrate");
    assert_eq!(
        applied_count(&first),
        aura_db::Migrations::embedded().len(),
        "{first}"
    );
    let note = text(&out.stderr);
    let root = checkout.root();
    if is_root() {
        // The postgres OS user cannot traverse the 0700 parent: the cluster lives under the
        // relocation base, and the first command says so.
        assert!(
            root.starts_with(aura_localpg::RELOCATION_BASE),
            "{}",
            root.display()
        );
        assert!(
            note.contains("cannot reach")
                && note.contains(&checkout.dir.join(".aura/pg").display().to_string())
                && note.contains(&root.display().to_string()),
            "{note}"
        );
        assert!(!checkout.dir.join(".aura").exists());
    } else {
        assert_eq!(root, checkout.dir.join(".aura/pg"));
    }
    assert!(checkout.accepts_connections());

    // Said once: the next command only has the usual note.
    let out = checkout.aura(&["db", "migrate"]);
    let again = ok(&out, "second migrate");
    assert!(again.contains("up to date"), "{again}");
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("cannot reach"), "{stderr}");
    assert!(
        stderr.contains(&format!("data in {}", root.display())),
        "{stderr}"
    );

    ok(&checkout.aura(&["dev", "down"]), "dev down");
    assert!(!checkout.accepts_connections());
}

#[test]
fn a_bad_setting_fails_before_any_cluster_is_made() {
    let checkout = Checkout::new("bad-setting", 0o755);
    for args in [&["db", "ping"][..], &["dev", "up"], &["db", "migrate"]] {
        let out = checkout.aura_in(&checkout.dir, &[("AURA_DB_MAX_CONNS", "0")], args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stdout)
        );
        let stderr = text(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("AURA_DB_MAX_CONNS"), "{args:?}: {stderr}");
        assert!(
            !checkout.dir.join(".aura").exists(),
            "{args:?} made the cluster before rejecting the setting"
        );
        assert!(!checkout.accepts_connections());
    }
    let out = checkout.aura(&["dev", "status"]);
    assert!(text(&out.stdout).starts_with("not initialised"));
}
