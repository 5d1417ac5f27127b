//! `scripts/lint-added-migrations.sh`, what CI runs: in a scratch git repository, it lints
//! only the migrations a branch adds since its merge base with main, and falls back to
//! every migration, saying so, when there is no base to compare with.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{both, text, workspace};

/// A scratch repository with the script, removed on drop.
struct Repo(tempfile::TempDir);

impl Repo {
    /// A repository whose `main` holds one good migration.
    fn new() -> Repo {
        let repo = Repo(tempfile::tempdir().expect("scratch dir"));
        repo.git(&["init", "-q", "-b", "main"]);
        let scripts = repo.path().join("scripts");
        std::fs::create_dir(&scripts).expect("scripts/");
        std::fs::copy(
            workspace().join("scripts/lint-added-migrations.sh"),
            scripts.join("lint-added-migrations.sh"),
        )
        .expect("copy the script");
        repo.add("good", "2026-12-02-000001_add_turns_metadata", "base");
        repo
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .current_dir(self.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git (needed by CI's migration lint) is on PATH");
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    }

    /// Copies the fixture `<kind>/<name>` to migrations/ and commits it.
    fn add(&self, kind: &str, name: &str, message: &str) {
        let from = workspace()
            .join("crates/aura-cli/tests/fixtures/lint")
            .join(kind)
            .join(name);
        let to = self.path().join("migrations").join(name);
        std::fs::create_dir_all(&to).expect("migration folder");
        for entry in std::fs::read_dir(&from).expect("fixture") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// The script as CI runs it (text output unless `env` says otherwise).
    fn lint(&self, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new("bash");
        cmd.current_dir(self.path())
            .arg("scripts/lint-added-migrations.sh")
            .env("AURA_BIN", env!("CARGO_BIN_EXE_aura"))
            .env_remove("AURA_LINT_BASE")
            .env_remove("AURA_LINT_FORMAT")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run the script")
    }
}

const BAD: &str = "2026-12-01-000001_index_without_concurrently";

#[test]
fn only_the_migrations_a_branch_adds_are_linted() {
    let repo = Repo::new();
    let out = repo.lint(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        text(&out.stdout).starts_with("lint-added-migrations: no migration added since main"),
        "{}",
        both(&out)
    );

    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.add("bad", BAD, "a bad one");
    repo.add(
        "good",
        "2026-12-02-000002_add_turns_metadata_index",
        "a good one",
    );
    let out = repo.lint(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        stdout.contains("2 migration(s) added since main"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "migrations/{BAD}/up.sql:2:1: error [require-concurrent-index-creation]"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("lint: 2 migrations, 1 error, "),
        "the one on main is not linted: {stdout}"
    );

    // On GitHub Actions: annotations, and a table in the step summary.
    let summary = repo.path().join("summary.md");
    let out = repo.lint(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", &summary.display().to_string()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        text(&out.stdout).contains(&format!("::error file=migrations/{BAD}/up.sql,line=2,")),
        "{}",
        both(&out)
    );
    let table = std::fs::read_to_string(&summary).expect("the step summary");
    assert!(
        table.starts_with("| where | level | rule | finding |")
            && table.contains(&format!("| `migrations/{BAD}/up.sql:2:1` | error |")),
        "{table}"
    );

    // A branch adding only expand migrations passes.
    repo.git(&["checkout", "-q", "-b", "expand", "main"]);
    repo.add(
        "good",
        "2026-12-02-000003_add_turns_kind_with_default",
        "expand",
    );
    let out = repo.lint(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        text(&out.stdout).contains("lint: 1 migration, 0 errors, "),
        "{}",
        both(&out)
    );
}

#[test]
fn without_a_merge_base_every_migration_is_linted_and_it_says_so() {
    // A clone without the base branch: no main, no origin/main.
    let repo = Repo::new();
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.add("bad", BAD, "a bad one");
    repo.git(&["branch", "-q", "-D", "main"]);
    let out = repo.lint(&[("AURA_LINT_BASE", "origin/release")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        stderr.contains("origin/release: no such commit"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "no base to compare with (set AURA_LINT_BASE, or fetch main); linting every migration"
        ),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).contains("lint: 2 migrations, 1 error, "),
        "{}",
        both(&out)
    );

    // Unrelated histories: main exists, but shares no commit with HEAD.
    let repo = Repo::new();
    repo.git(&["checkout", "-q", "--orphan", "lonely"]);
    repo.git(&["commit", "-q", "-m", "unrelated"]);
    let out = repo.lint(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("HEAD and main have no merge base"),
        "{}",
        both(&out)
    );
    assert!(
        text(&out.stdout).contains("lint: 1 migration, 0 errors, "),
        "{}",
        both(&out)
    );
}
