//! `aura db lint PATHS…` as a user and CI run it: the fixtures of dangerous migrations are
//! each flagged with their rule, expand-style migrations and the project's own pass,
//! acknowledgements are shown with their reason, and bad input is one line on stderr.
//! None of this connects to a database (the pending-by-default runs are in `cli.rs`).

mod common;

use std::process::{Command, Output};

use common::{both, text, workspace};

const FIXTURES: &str = "crates/aura-cli/tests/fixtures/lint";

/// Each bad fixture and the error it must give (every folder of `bad/` is listed here).
const BAD: &[(&str, &str)] = &[
    (
        "2026-12-01-000001_index_without_concurrently",
        "require-concurrent-index-creation",
    ),
    (
        "2026-12-01-000002_not_null_column_without_default",
        "adding-required-field",
    ),
    (
        "2026-12-01-000003_set_not_null_at_once",
        "adding-not-nullable-field",
    ),
    (
        "2026-12-01-000004_change_column_type",
        "changing-column-type",
    ),
    (
        "2026-12-01-000005_check_validated_at_once",
        "constraint-missing-not-valid",
    ),
    (
        "2026-12-01-000006_foreign_key_validated_at_once",
        "adding-foreign-key-constraint",
    ),
    ("2026-12-01-000007_rename_column", "renaming-column"),
    ("2026-12-01-000008_rename_table", "renaming-table"),
    (
        "2026-12-01-000009_concurrently_in_a_transaction",
        "concurrently-in-transaction",
    ),
    ("2026-12-01-000010_commit_inside", "transaction-nesting"),
    (
        "2026-12-01-000011_acknowledged_without_reason",
        "acknowledgement-without-reason",
    ),
    (
        "2026-12-01-000012_more_than_concurrently_without_transaction",
        "not-alone-without-transaction",
    ),
];

/// `aura db lint <args>` run from the workspace root, so paths print as given.
fn lint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aura"))
        .current_dir(workspace())
        .env_remove("RUST_LOG")
        .args(["db", "lint"])
        .args(args)
        .output()
        .expect("run aura")
}

/// The summary line's counts: `lint: N migrations, E errors, W warnings, A acknowledged`.
fn summary(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("lint: "))
        .unwrap_or_else(|| panic!("no summary in {stdout}"));
    line.split(" (").next().unwrap_or(line).to_owned()
}

#[test]
fn every_bad_fixture_is_an_error_naming_its_rule_and_what_to_do() {
    let bad = format!("{FIXTURES}/bad");
    let listed: Vec<String> = std::fs::read_dir(workspace().join(&bad))
        .expect("bad fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".md"))
        .collect();
    assert_eq!(
        listed.len(),
        BAD.len(),
        "every fixture is in BAD: {listed:?}"
    );

    let out = lint(&[&bad]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    for (dir, rule) in BAD {
        let file = format!("{bad}/{dir}/up.sql:");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&file) && l.contains(&format!(": error [{rule}] ")))
            .unwrap_or_else(|| panic!("no {rule} error for {dir} in\n{stdout}"));
        let instead = line.split(" Instead: ").nth(1).unwrap_or("");
        assert!(instead.len() > 20, "says what to do instead: {line}");
        // `file:line:col:` with real numbers.
        let at: Vec<&str> = line[file.len()..].splitn(3, ':').collect();
        assert!(
            at[0].parse::<usize>().is_ok() && at[1].parse::<usize>().is_ok(),
            "{line}"
        );

        // Alone, each one fails the lint too.
        let alone = lint(&[&format!("{bad}/{dir}")]);
        assert_eq!(alone.status.code(), Some(1), "{dir}: {}", both(&alone));
    }
    assert!(
        summary(&stdout).starts_with(&format!("lint: {} migrations, ", BAD.len())),
        "{stdout}"
    );
}

#[test]
fn expand_migrations_and_the_projects_own_pass() {
    let out = lint(&[&format!("{FIXTURES}/good")]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        summary(&text(&out.stdout)),
        "lint: 6 migrations, 0 errors, 0 warnings, 0 acknowledged",
        "{}",
        both(&out)
    );

    let out = lint(&["migrations"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let count = aura_db::Migrations::embedded().len();
    assert!(
        summary(&stdout).starts_with(&format!("lint: {count} migrations, 0 errors, ")),
        "{stdout}"
    );
    // The only findings are the type advice rules.rs makes warnings.
    for line in stdout.lines().filter(|l| !l.starts_with("lint: ")) {
        assert!(
            line.contains(": warning [prefer-bigint-over-int] "),
            "{line}"
        );
    }
}

#[test]
fn an_acknowledged_finding_is_shown_with_its_reason_and_passes() {
    let dir = format!("{FIXTURES}/acknowledged/2026-12-03-000001_rename_unused_column");
    let out = lint(&[&dir]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        stdout.lines().any(|l| l.starts_with(&format!("{dir}/up.sql:2:"))
            && l.contains(": acknowledged [renaming-column] ")
            && l.ends_with(
                "Acknowledged: turns.legacy_note has been read by no release since 0.3; nothing breaks"
            )),
        "{stdout}"
    );
    assert_eq!(
        summary(&stdout),
        "lint: 1 migration, 0 errors, 0 warnings, 1 acknowledged"
    );
}

#[test]
fn github_format_is_one_workflow_command_per_finding_and_markdown_a_table() {
    let dir = format!("{FIXTURES}/bad/2026-12-01-000001_index_without_concurrently");
    let out = lint(&["--format", "github", &dir]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let first = stdout.lines().next().unwrap_or("");
    assert!(
        first.starts_with(&format!(
            "::error file={dir}/up.sql,line=2,col=1,title=require-concurrent-index-creation \
             (error%2C migration 2026-12-01-000001_index_without_concurrently)::"
        )),
        "{stdout}"
    );
    assert!(first.contains(" Instead: create it with CREATE INDEX CONCURRENTLY"));

    let table = lint(&["--format", "markdown", &dir]);
    assert_eq!(table.status.code(), Some(1), "{}", both(&table));
    assert!(
        text(&table.stdout).starts_with(&format!(
            "| where | level | rule | finding |\n|---|---|---|---|\n| `{dir}/up.sql:2:1` | error | \
             `require-concurrent-index-creation` | "
        )),
        "{}",
        both(&table)
    );

    let ack = lint(&["--format", "github", &format!("{FIXTURES}/acknowledged")]);
    assert_eq!(ack.status.code(), Some(0), "{}", both(&ack));
    assert!(
        text(&ack.stdout).starts_with("::notice file="),
        "{}",
        both(&ack)
    );
}

#[test]
fn rules_off_for_the_project_are_listed_with_why() {
    let out = lint(&["--rules"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", both(&out));
    for rule in [
        "prefer-robust-stmts",
        "require-lock-timeout",
        "ban-concurrent-index-creation-in-transaction",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&format!("off      {rule}: "))),
            "{stdout}"
        );
    }
}

/// A scratch folder of migrations, written from (folder, file, text) triples.
fn scratch(files: &[(&str, &str, &[u8])]) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("scratch dir");
    for (dir, file, body) in files {
        let dir = root.path().join(dir);
        std::fs::create_dir_all(&dir).expect("create dir");
        std::fs::write(dir.join(file), body).expect("write file");
    }
    root
}

/// Bad input: exit code 1, nothing on stdout, one line on stderr saying what is wrong.
fn assert_one_line_error(out: &Output, expected: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", both(out));
    assert_eq!(text(&out.stdout), "", "nothing linted: {}", both(out));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: lint: "), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
}

#[test]
fn bad_input_is_one_line_naming_what_is_wrong() {
    let root = scratch(&[
        ("notes", "todo.txt", b"not a migration"),
        (
            "2026-12-01-000001_good",
            "up.sql",
            b"ALTER TABLE t ADD COLUMN c text;",
        ),
        (
            "2026-12-01-000002_unparsable",
            "up.sql",
            b"ALTER TABLE t ADD COLUMN c text;\nCREATE TABLE (;\n",
        ),
        ("2026-12-01-000003_not_utf8", "up.sql", b"SELECT '\xff';"),
        ("badname", "up.sql", b"SELECT 1;"),
    ]);
    let at = |p: &str| root.path().join(p).display().to_string();

    // A folder that is not a migration and holds none.
    assert_one_line_error(
        &lint(&[&at("notes")]),
        &[&at("notes"), "is not a migration folder"],
    );
    // An up.sql squawk cannot parse: file, line and column; the good one before it is not
    // reported either.
    assert_one_line_error(
        &lint(&[
            &at("2026-12-01-000001_good"),
            &at("2026-12-01-000002_unparsable"),
        ]),
        &[
            &format!("{}:2:", at("2026-12-01-000002_unparsable/up.sql")),
            "cannot parse the SQL of migration 2026-12-01-000002_unparsable",
        ],
    );
    assert_one_line_error(&lint(&[&at("2026-12-01-000003_not_utf8")]), &["not UTF-8"]);
    assert_one_line_error(
        &lint(&[&at("badname")]),
        &["\"badname\" is not <version>_<name>"],
    );
    assert_one_line_error(
        &lint(&[&at("missing")]),
        &[&at("missing"), "does not exist"],
    );
    assert_one_line_error(
        &lint(&[&at("notes/todo.txt")]),
        &["is a file; give a migration folder"],
    );
    // A folder of migrations with a folder that is none: the set is refused.
    let mixed = scratch(&[
        ("2026-12-01-000001_good", "up.sql", b"SELECT 1;"),
        ("notes", "todo.txt", b"not a migration"),
    ]);
    assert_one_line_error(
        &lint(&[&mixed.path().display().to_string()]),
        &["invalid migrations at", "notes: has no up.sql"],
    );
}
