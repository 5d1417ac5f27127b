//! Support for the workspace-level end-to-end tests: the `aura` binary, run against a
//! [`TestDb`] with the environment a deployment would give it.
//!
//! The binary belongs to another package (`aura-cli`), so Cargo does not hand its path to
//! these tests (`CARGO_BIN_EXE_*` is per package). [`aura_binary`] builds it with the same
//! cargo and profile that built the tests, once per test process, and finds it beside them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use aura_db::{Config, vars};
use aura_testkit::TestDb;
use secrecy::ExposeSecret;

/// The path of the `aura` binary of this workspace, built on first use.
///
/// Panics (failing the test) when cargo cannot build it.
pub fn aura_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_aura)
}

fn build_aura() -> PathBuf {
    // <target>/<profile dir>/deps/e2e-<hash>: the binary lands in <target>/<profile dir>.
    let exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in <target>/<profile>/deps");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root");
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "--package", "aura-cli", "--bin", "aura"])
        .args(["--profile", profile])
        .status()
        .expect("run cargo to build the aura binary");
    assert!(status.success(), "cargo build -p aura-cli failed: {status}");
    let binary = profile_dir.join(format!("aura{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "{} was not built", binary.display());
    binary
}

/// The environment a deployment gives Aura for one database: the `POSTGRES_*` variables of
/// its superuser (for role bootstrap) and the password of the application roles. The CLI
/// and the library read the very same map, so both see one configuration.
#[derive(Clone)]
pub struct AuraEnv {
    vars: BTreeMap<&'static str, String>,
}

impl AuraEnv {
    /// The environment for `db`, nothing else of ours set.
    pub fn for_db(db: &TestDb) -> AuraEnv {
        let su = db.superuser_url().pg_config();
        let host = match &su.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            other => panic!("the test cluster listens on TCP, not {other:?}"),
        };
        let password = su.get_password().expect("superuser password");
        let vars = BTreeMap::from([
            (vars::POSTGRES_HOST, host),
            (vars::POSTGRES_PORT, su.get_ports()[0].to_string()),
            (vars::POSTGRES_DB, db.name().to_owned()),
            (
                vars::POSTGRES_USER,
                su.get_user().expect("superuser name").to_owned(),
            ),
            (
                vars::POSTGRES_PASSWORD,
                String::from_utf8_lossy(password).into_owned(),
            ),
            (
                vars::AURA_DB_PASSWORD,
                db.config().role_password().expose_secret().to_owned(),
            ),
        ]);
        AuraEnv { vars }
    }

    /// An environment with none of our variables but `pairs`: a deployment configured by
    /// URLs alone (managed Postgres, per-role credentials).
    pub fn only(pairs: &[(&'static str, String)]) -> AuraEnv {
        AuraEnv {
            vars: pairs.iter().cloned().collect(),
        }
    }

    /// The same environment with one more variable.
    pub fn with(mut self, var: &'static str, value: &str) -> AuraEnv {
        self.vars.insert(var, value.to_owned());
        self
    }

    /// [`Config::from_lookup`] over this environment: what a sibling crate's
    /// `Config::from_env()` reads in a process started with it.
    pub fn config(&self) -> Config {
        Config::from_lookup(|name| self.vars.get(name).cloned()).expect("valid configuration")
    }

    /// A command running the `aura` binary with exactly this environment of ours (every
    /// Aura and `POSTGRES_*` variable of the calling process removed first).
    pub fn aura(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(aura_binary());
        for var in vars::ALL {
            cmd.env_remove(var);
        }
        cmd.env_remove(vars::AURA_RESET_YES).env_remove("RUST_LOG");
        cmd.envs(&self.vars).args(args);
        cmd
    }

    /// Runs `aura <args>` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.aura(args).output().expect("run the aura binary")
    }
}

/// Standard output or error as text, for assertions and their messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How many migrations `aura db migrate` says it applied: its `applied <version>_<name>
/// (<time> ms)` lines, not the summary.
pub fn applied_count(stdout: &[u8]) -> usize {
    text(stdout)
        .lines()
        .filter(|l| l.starts_with("applied ") && l.ends_with(" ms)"))
        .count()
}
