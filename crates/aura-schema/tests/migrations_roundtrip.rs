//! Every down.sql reverses its up.sql exactly, and up -> down -> up leaves the same schema:
//! compared as `pg_dump --schema-only --schema=aura` text after each step.

mod common;

use aura_testkit::TestDb;

#[tokio::test]
async fn up_down_up_leaves_the_same_schema() {
    // An empty database with the roles and the (empty) schema, as `aura db migrate` starts.
    let db = TestDb::empty().await;
    aura_db::ensure_roles(db.config())
        .await
        .expect("bootstrap roles");
    let superuser = db.superuser_client().await;
    let pg_dump = common::pg_dump_path(&superuser).await;
    let dump = || common::dump_schema(&pg_dump, db.superuser_url());
    let migrate = common::migrate_client(&db).await;
    let migrations = common::repo_migrations();

    // Up, one migration at a time: states[i] is the schema before migration i.
    let mut states = vec![dump()];
    for m in &migrations {
        common::apply_file(&migrate, m, &m.up)
            .await
            .unwrap_or_else(|e| panic!("{}/up.sql: {e}", m.dir_name));
        states.push(dump());
    }
    let migrated = states.last().cloned().unwrap_or_default();
    for table in ["conversations", "turns", "runs", "ask_user_requests"] {
        assert!(
            migrated.contains(&format!("CREATE TABLE aura.{table} (")),
            "{table} missing from the dump:\n{migrated}"
        );
    }

    // Down, newest first: each must give back exactly the schema before its up.
    for (i, m) in migrations.iter().enumerate().rev() {
        common::apply_file(&migrate, m, &m.down)
            .await
            .unwrap_or_else(|e| panic!("{}/down.sql: {e}", m.dir_name));
        let now = dump();
        assert!(
            now == states[i],
            "{}/down.sql does not reverse its up.sql:\n{}",
            m.dir_name,
            diff(&states[i], &now)
        );
    }

    // Up again: the same schema as the first time.
    for m in &migrations {
        common::apply_file(&migrate, m, &m.up)
            .await
            .unwrap_or_else(|e| panic!("{}/up.sql (again): {e}", m.dir_name));
    }
    let again = dump();
    assert!(
        again == migrated,
        "up -> down -> up changed the schema:\n{}",
        diff(&migrated, &again)
    );
}

/// The lines only in `a` (-) and only in `b` (+): enough to see what differs.
fn diff(a: &str, b: &str) -> String {
    let only = |x: &str, y: &str, sign: char| {
        x.lines()
            .filter(|l| !y.lines().any(|m| m == *l))
            .map(|l| format!("{sign} {l}"))
            .collect::<Vec<_>>()
    };
    let mut out = only(a, b, '-');
    out.extend(only(b, a, '+'));
    out.join("\n")
}
