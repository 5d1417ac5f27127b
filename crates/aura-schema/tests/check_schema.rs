//! `scripts/check-schema.sh` (the drift check) passes on the repository as it is, and fails
//! with a diff when a migration adds a column schema.rs lacks; `scripts/schema.sh` then
//! regenerates schema.rs so that the check passes again. The changed migrations live in a
//! copy (AURA_SCHEMA_ROOT): the repository is never touched.

mod common;

use std::path::Path;
use std::process::{Command, Output};

const SCHEMA_RS: &str = "crates/aura-schema/src/schema.rs";

fn run(script: &str, root: Option<&Path>) -> Output {
    let repo = common::repo_root();
    let mut cmd = Command::new("bash");
    cmd.arg(repo.join("scripts").join(script))
        .current_dir(&repo)
        .env_remove("AURA_SCHEMA_ROOT");
    if let Some(root) = root {
        cmd.env("AURA_SCHEMA_ROOT", root);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "exit: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A copy of what the scripts read: diesel.toml, migrations/ and schema.rs.
fn copy_of_repo() -> common::TempDir {
    let repo = common::repo_root();
    let dir = common::TempDir::new("aura-check-schema");
    std::fs::copy(repo.join("diesel.toml"), dir.path().join("diesel.toml")).expect("diesel.toml");
    common::copy_tree(&repo.join("migrations"), &dir.path().join("migrations"));
    let schema = dir.path().join(SCHEMA_RS);
    std::fs::create_dir_all(schema.parent().expect("parent")).expect("mkdir");
    std::fs::copy(repo.join(SCHEMA_RS), &schema).expect("schema.rs");
    dir
}

#[test]
fn check_schema_passes_on_the_repository() {
    let out = run("check-schema.sh", None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("schema file matches migrations/"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_schema_fails_when_a_migration_adds_a_column_schema_rs_lacks() {
    let copy = copy_of_repo();
    let schema = copy.path().join(SCHEMA_RS);
    let original = std::fs::read_to_string(&schema).expect("read schema.rs");

    // The copy as it is passes: what fails below fails because of the new migration.
    let out = run("check-schema.sh", Some(copy.path()));
    assert!(out.status.success(), "unchanged copy: {}", text(&out));

    let migration = copy
        .path()
        .join("migrations/2999-01-01-000000_add_conversations_archived_at");
    std::fs::create_dir_all(&migration).expect("mkdir migration");
    std::fs::write(
        migration.join("up.sql"),
        "ALTER TABLE conversations ADD COLUMN archived_at timestamptz;\n\
         COMMENT ON COLUMN conversations.archived_at IS 'When the conversation was archived.';\n",
    )
    .expect("up.sql");
    std::fs::write(
        migration.join("down.sql"),
        "ALTER TABLE conversations DROP COLUMN archived_at;\n",
    )
    .expect("down.sql");

    let out = run("check-schema.sh", Some(copy.path()));
    assert!(!out.status.success(), "drift not detected: {}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("archived_at -> Nullable<Timestamptz>"),
        "the diff should show the missing column: {all}"
    );
    assert!(
        all.contains("just schema"),
        "the fix should be named: {all}"
    );
    assert_eq!(
        std::fs::read_to_string(&schema).expect("read schema.rs"),
        original,
        "the check must not write schema.rs"
    );

    // `just schema` on the copy regenerates it, and the check passes again.
    let out = run("schema.sh", Some(copy.path()));
    assert!(out.status.success(), "schema.sh: {}", text(&out));
    let regenerated = std::fs::read_to_string(&schema).expect("read schema.rs");
    assert!(
        regenerated.contains("/// When the conversation was archived.")
            && regenerated.contains("archived_at -> Nullable<Timestamptz>,"),
        "{regenerated}"
    );
    let out = run("check-schema.sh", Some(copy.path()));
    assert!(out.status.success(), "after regenerating: {}", text(&out));
}
