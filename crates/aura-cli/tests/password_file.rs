//! `AURA_DB_PASSWORD_FILE` as a deployment uses it: role URLs without a password (managed
//! Postgres, bootstrap skipped) and the password in a mounted file.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use aura_db::vars;
use aura_testkit::TestDb;
use common::{applied_count, text};
use secrecy::{ExposeSecret, SecretString};

/// `aura` with only `env` of our variables set.
fn aura(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aura"));
    for var in vars::ALL {
        cmd.env_remove(var);
    }
    cmd.env_remove(vars::AURA_RESET_YES).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run aura")
}

fn password_file(db: &TestDb, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("aura-cli-password-file");
    std::fs::create_dir_all(&dir).expect("test folder");
    let path = dir.join(db.name());
    std::fs::write(&path, content).expect("write the password file");
    path
}

#[tokio::test]
async fn migrate_and_ping_take_the_password_from_the_file() {
    let db = TestDb::empty().await;
    aura_db::ensure_roles(db.config()).await.unwrap();
    let role_password = db.config().role_password().expose_secret().to_owned();
    let no_password = SecretString::from(String::new());
    let app = db.superuser_url().with_login("aura_app", &no_password);
    let migrate = db.superuser_url().with_login("aura_migrate", &no_password);
    let file = password_file(&db, &format!("{role_password}\n"));
    let file_text = file.display().to_string();
    let env = [
        (vars::AURA_DB_URL, app.expose()),
        (vars::AURA_DB_MIGRATE_URL, migrate.expose()),
        (vars::AURA_DB_PASSWORD_FILE, file_text.as_str()),
    ];

    let out = aura(&["db", "migrate"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        applied_count(&text(&out.stdout)),
        aura_db::Migrations::embedded().len()
    );
    let out = aura(&["db", "ping"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = aura(&["db", "status"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Without the file the URLs carry no password: refused by the server.
    let out = aura(&["db", "ping"], &env[..2]);
    assert!(!out.status.success());

    // An empty file: one line naming the variable and the path, before connecting.
    std::fs::write(&file, "\n").unwrap();
    let out = aura(&["db", "ping"], &env);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("AURA_DB_PASSWORD_FILE") && stderr.contains(&file_text),
        "{stderr}"
    );

    // The variable and its file together: an error naming both, never the password.
    std::fs::write(&file, &role_password).unwrap();
    let mut both = env.to_vec();
    both.push((vars::AURA_DB_PASSWORD, role_password.as_str()));
    let out = aura(&["db", "ping"], &both);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("AURA_DB_PASSWORD_FILE")
            && stderr.contains("AURA_DB_PASSWORD ")
            && !stderr.contains(&role_password),
        "{stderr}"
    );
    std::fs::remove_file(&file).unwrap();
}
