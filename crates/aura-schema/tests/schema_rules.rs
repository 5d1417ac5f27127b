//! The schema rules (see `common/rules.rs`) hold on the migrated schema, and a migration
//! that breaks one of them is reported by the checker, rule by rule.

mod common;

use aura_testkit::TestDb;
use std::collections::BTreeSet;

use common::rules::{self, Rule, Rules};

/// Violations of the migrated database, after applying `sql` as the migrate role (or as
/// the superuser) the way the runner applies a migration.
async fn violations_after(sql: &str, as_superuser: bool) -> Vec<rules::Violation> {
    let db = TestDb::new().await;
    let client = if as_superuser {
        db.superuser_client().await
    } else {
        common::migrate_client(&db).await
    };
    common::apply(&client, sql)
        .await
        .unwrap_or_else(|e| panic!("the bad migration itself failed: {e}\n{sql}"));
    rules::check(&db.superuser_client().await, &Rules::aura()).await
}

/// Asserts that the violations are exactly of the rules `expected`, and shows them.
fn assert_rules(violations: &[rules::Violation], expected: &[Rule]) {
    let got: BTreeSet<Rule> = violations.iter().map(|v| v.rule).collect();
    let want: BTreeSet<Rule> = expected.iter().copied().collect();
    let listing: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert_eq!(got, want, "violations:\n{}", listing.join("\n"));
}

/// Comments for a table and its columns, so a bad migration breaks only its one rule.
fn comments(table: &str, columns: &[&str]) -> String {
    let mut sql = format!("COMMENT ON TABLE {table} IS 'test';\n");
    for c in columns {
        sql.push_str(&format!("COMMENT ON COLUMN {table}.{c} IS 'test';\n"));
    }
    sql
}

#[tokio::test]
async fn the_migrated_schema_keeps_every_rule() {
    let db = TestDb::new().await;
    let client = db.superuser_client().await;
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'aura' \
             AND tablename IN ('conversations', 'turns', 'runs', 'ask_user_requests')",
            &[],
        )
        .await
        .expect("count tables")
        .get(0);
    assert_eq!(
        tables, 4,
        "the test database should hold the migrated schema"
    );
    let violations = rules::check(&client, &Rules::aura()).await;
    assert_rules(&violations, &[]);
}

#[tokio::test]
async fn uncommented_table_and_columns_are_reported() {
    let v = violations_after(
        "CREATE TABLE notes (
             conversation_id uuid NOT NULL REFERENCES conversations ON DELETE CASCADE,
             id uuid NOT NULL,
             body text NOT NULL,
             PRIMARY KEY (conversation_id, id));",
        false,
    )
    .await;
    assert_rules(&v, &[Rule::TableComment, Rule::ColumnComment]);
    assert_eq!(
        v.iter().filter(|v| v.rule == Rule::ColumnComment).count(),
        3,
        "{v:?}"
    );
}

#[tokio::test]
async fn an_unindexed_foreign_key_is_reported_and_a_partial_index_does_not_count() {
    let sql = format!(
        "CREATE TABLE notes (
             conversation_id uuid NOT NULL REFERENCES conversations ON DELETE CASCADE,
             id uuid NOT NULL,
             run_id uuid,
             PRIMARY KEY (conversation_id, id),
             CONSTRAINT notes_run_fkey FOREIGN KEY (conversation_id, run_id)
                 REFERENCES runs ON DELETE CASCADE);
         CREATE INDEX notes_run_partial_idx ON notes (conversation_id, run_id)
             WHERE run_id IS NOT NULL;
         {}",
        comments("notes", &["conversation_id", "id", "run_id"])
    );
    let v = violations_after(&sql, false).await;
    assert_rules(&v, &[Rule::ForeignKeyIndex]);
    assert_eq!(v[0].object, "notes_run_fkey");
}

#[tokio::test]
async fn a_foreign_key_without_on_delete_is_reported() {
    let sql = format!(
        "CREATE TABLE notes (
             conversation_id uuid NOT NULL REFERENCES conversations,
             id uuid NOT NULL,
             PRIMARY KEY (conversation_id, id));
         {}",
        comments("notes", &["conversation_id", "id"])
    );
    assert_rules(
        &violations_after(&sql, false).await,
        &[Rule::ForeignKeyOnDelete],
    );
}

#[tokio::test]
async fn on_delete_set_null_is_reported() {
    let sql = format!(
        "CREATE TABLE notes (
             conversation_id uuid NOT NULL REFERENCES conversations ON DELETE CASCADE,
             id uuid NOT NULL,
             run_id uuid,
             PRIMARY KEY (conversation_id, id),
             FOREIGN KEY (conversation_id, run_id) REFERENCES runs ON DELETE SET NULL (run_id));
         CREATE INDEX notes_run_idx ON notes (conversation_id, run_id);
         {}",
        comments("notes", &["conversation_id", "id", "run_id"])
    );
    assert_rules(
        &violations_after(&sql, false).await,
        &[Rule::SetNullOrDefault],
    );
}

#[tokio::test]
async fn a_primary_key_without_the_conversation_id_first_is_reported() {
    let sql = format!(
        "CREATE TABLE notes (
             conversation_id uuid NOT NULL REFERENCES conversations ON DELETE CASCADE,
             id uuid PRIMARY KEY);
         CREATE INDEX notes_conversation_idx ON notes (conversation_id);
         {}",
        comments("notes", &["conversation_id", "id"])
    );
    assert_rules(&violations_after(&sql, false).await, &[Rule::PrimaryKey]);
}

#[tokio::test]
async fn a_unique_index_without_the_conversation_id_first_is_reported() {
    let v = violations_after("CREATE UNIQUE INDEX turns_id_key ON turns (id);", false).await;
    assert_rules(&v, &[Rule::UniqueIndex]);
    assert_eq!(v[0].object, "turns_id_key");
}

#[tokio::test]
async fn a_foreign_key_not_led_by_the_conversation_id_is_reported() {
    // Postgres accepts the columns in any order; Citus needs the distribution column at the
    // same position on both sides.
    let sql = format!(
        "CREATE TABLE notes (
             conversation_id uuid NOT NULL REFERENCES conversations ON DELETE CASCADE,
             id uuid NOT NULL,
             run_id uuid,
             PRIMARY KEY (conversation_id, id),
             FOREIGN KEY (run_id, conversation_id) REFERENCES runs (id, conversation_id)
                 ON DELETE CASCADE);
         CREATE INDEX notes_run_idx ON notes (conversation_id, run_id);
         {}",
        comments("notes", &["conversation_id", "id", "run_id"])
    );
    assert_rules(
        &violations_after(&sql, false).await,
        &[Rule::ForeignKeyDistribution],
    );
}

#[tokio::test]
async fn identity_and_serial_columns_are_reported() {
    let identity = "ALTER TABLE turns ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;
                    COMMENT ON COLUMN turns.n IS 'test';";
    let v = violations_after(identity, false).await;
    assert_rules(&v, &[Rule::Sequence]);
    assert!(v.iter().any(|v| v.object == "aura.turns.n"), "{v:?}");

    let serial = "ALTER TABLE runs ADD COLUMN n bigserial; COMMENT ON COLUMN runs.n IS 'test';";
    let v = violations_after(serial, false).await;
    assert_rules(&v, &[Rule::Sequence]);
    assert!(
        v.iter()
            .any(|v| v.object == "aura.runs.n" && v.detail.contains("serial")),
        "{v:?}"
    );
}

#[tokio::test]
async fn a_table_without_the_distribution_column_is_reported() {
    let sql = format!(
        "CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL);
         {}",
        comments("settings", &["key", "value"])
    );
    assert_rules(
        &violations_after(&sql, false).await,
        &[Rule::DistributionColumn, Rule::PrimaryKey],
    );
}

#[tokio::test]
async fn a_nullable_conversation_id_is_reported() {
    let sql = format!(
        "CREATE TABLE notes (
             conversation_id uuid REFERENCES conversations ON DELETE CASCADE,
             id uuid PRIMARY KEY);
         CREATE INDEX notes_conversation_idx ON notes (conversation_id);
         {}",
        comments("notes", &["conversation_id", "id"])
    );
    assert_rules(
        &violations_after(&sql, false).await,
        &[Rule::DistributionNotNull, Rule::PrimaryKey],
    );
}

#[tokio::test]
async fn tables_outside_the_schema_or_owned_by_another_role_are_reported() {
    let v = violations_after("CREATE TABLE public.stray (id int);", true).await;
    assert_rules(&v, &[Rule::OutsideSchema]);
    assert_eq!(v[0].object, "public.stray");

    let sql = format!(
        "CREATE TABLE aura.notes (
             conversation_id uuid NOT NULL REFERENCES aura.conversations ON DELETE CASCADE,
             id uuid NOT NULL,
             PRIMARY KEY (conversation_id, id));
         {}",
        comments("aura.notes", &["conversation_id", "id"])
    );
    let v = violations_after(&sql, true).await;
    assert_rules(&v, &[Rule::Owner]);
}
