//! The app role can read and write every table the migrations create, through the default
//! privileges role bootstrap sets (the migrations grant nothing themselves), and cannot
//! change the schema.

mod common;

use aura_testkit::TestDb;

#[tokio::test]
async fn the_app_role_has_dml_on_every_table() {
    let db = TestDb::new().await;
    let superuser = db.superuser_client().await;
    let app_role = db.config().app_role().to_owned();
    let ignore = [aura_db::DIESEL_TABLE, aura_db::CHECKSUM_TABLE];

    // Every table, found in the catalog: a table added later is covered without a change here.
    let tables: Vec<String> = superuser
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'aura' ORDER BY 1",
            &[],
        )
        .await
        .expect("list tables")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|t| !ignore.contains(&t.as_str()))
        .collect();
    assert_eq!(
        tables,
        ["ask_user_requests", "conversations", "runs", "turns"],
        "the tables of the data model"
    );
    for table in &tables {
        for privilege in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
            let has: bool = superuser
                .query_one(
                    "SELECT has_table_privilege($1, format('aura.%I', $2::text), $3)",
                    &[&app_role, table, &privilege],
                )
                .await
                .expect("has_table_privilege")
                .get(0);
            assert!(has, "{app_role} lacks {privilege} on aura.{table}");
        }
        for privilege in ["TRUNCATE", "REFERENCES", "TRIGGER"] {
            let has: bool = superuser
                .query_one(
                    "SELECT has_table_privilege($1, format('aura.%I', $2::text), $3)",
                    &[&app_role, table, &privilege],
                )
                .await
                .expect("has_table_privilege")
                .get(0);
            assert!(
                !has,
                "{app_role} should not have {privilege} on aura.{table}"
            );
        }
    }

    // And for real: every statement kind on every table, as the app role.
    let app = db.app_client().await;
    let c = "0190a000-0000-7000-8000-000000000001";
    let r = "0190a000-0000-7000-8000-0000000000a1";
    let t = "0190a000-0000-7000-8000-0000000000b1";
    let q = "0190a000-0000-7000-8000-0000000000c1";
    app.batch_execute(&format!(
        "INSERT INTO conversations (id) VALUES ('{c}');
         INSERT INTO turns (conversation_id, id, seq, role, content) VALUES ('{c}', '{t}', 1, 'user', 'hi');
         INSERT INTO runs (conversation_id, id, status) VALUES ('{c}', '{r}', 'running');
         INSERT INTO ask_user_requests (conversation_id, id, run_id, question, status)
             VALUES ('{c}', '{q}', '{r}', 'ok?', 'pending');
         UPDATE conversations SET title = 'x', turn_count = 1 WHERE id = '{c}';
         UPDATE turns SET content = 'hello' WHERE conversation_id = '{c}' AND id = '{t}';
         UPDATE runs SET status = 'completed', ended_at = now() WHERE conversation_id = '{c}' AND id = '{r}';
         UPDATE ask_user_requests SET status = 'answered', answer = 'yes', answered_at = now()
             WHERE conversation_id = '{c}' AND id = '{q}';"
    ))
    .await
    .unwrap_or_else(|e| panic!("app role DML: {}", common::pg_error(&e)));
    for table in &tables {
        let n: i64 = app
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap_or_else(|e| panic!("SELECT {table}: {}", common::pg_error(&e)))
            .get(0);
        assert_eq!(n, 1, "{table}");
    }
    app.batch_execute(&format!(
        "DELETE FROM ask_user_requests WHERE conversation_id = '{c}';
         DELETE FROM runs WHERE conversation_id = '{c}';
         DELETE FROM turns WHERE conversation_id = '{c}';
         DELETE FROM conversations WHERE id = '{c}';"
    ))
    .await
    .unwrap_or_else(|e| panic!("app role DELETE: {}", common::pg_error(&e)));
}

#[tokio::test]
async fn the_app_role_cannot_change_the_schema() {
    let db = TestDb::new().await;
    let app = db.app_client().await;
    for ddl in [
        "CREATE TABLE aura.scratch (id uuid)",
        "CREATE TABLE public.scratch (id uuid)",
        "ALTER TABLE aura.turns ADD COLUMN x int",
        "DROP TABLE aura.turns",
        "CREATE INDEX ON aura.turns (content)",
        "TRUNCATE aura.turns",
    ] {
        assert_eq!(
            common::sqlstate(app.batch_execute(ddl).await),
            "42501",
            "{ddl} should be refused"
        );
    }
}
