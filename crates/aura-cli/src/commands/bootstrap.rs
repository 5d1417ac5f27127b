//! `aura db bootstrap [--print-sql]`: the roles, the schema and their privileges, run here
//! or printed for an administrator (managed Postgres, no superuser).

use std::process::ExitCode;

use aura_db::{Config, RolesSpec, vars};
use secrecy::SecretString;

/// Runs the bootstrap as the role of AURA_DB_BOOTSTRAP_URL, with the passwords of the
/// script (see [`spec`]).
pub async fn run(config: &Config) -> Result<ExitCode, String> {
    let spec = spec(config)?;
    let report =
        aura_db::ensure_roles_with(config.bootstrap_url(), &spec, config.pool().connect_timeout)
            .await
            .map_err(|e| aura_db::error_chain(&e))?;
    super::db::print_roles(config, &report);
    Ok(ExitCode::SUCCESS)
}

/// Prints the provisioning script for the configured database and roles; connects nowhere.
pub fn print_sql() -> Result<ExitCode, String> {
    let config = Config::from_lookup(|name| std::env::var(name).ok()).map_err(|e| e.to_string())?;
    let spec = spec(&config)?;
    let database = config
        .app_url()
        .dbname()
        .unwrap_or_else(|| "aura".to_owned());
    let sql = aura_db::bootstrap_script(&spec, &database).map_err(|e| e.to_string())?;
    print!("{sql}");
    Ok(ExitCode::SUCCESS)
}

/// The roles of `config`, each with the password of its URL when one was given verbatim
/// (AURA_DB_URL, AURA_DB_MIGRATE_URL), else AURA_DB_PASSWORD. A URL that logs in as another
/// role than the configured one is refused: the script would provision the wrong role.
fn spec(config: &Config) -> Result<RolesSpec, String> {
    let mut spec = RolesSpec::from_config(config);
    spec.migrate_password = Some(config.role_password().clone());
    let given = |var: &str| std::env::var(var).is_ok_and(|v| !v.is_empty());
    let urls = [
        (
            vars::AURA_DB_URL,
            vars::AURA_DB_APP_ROLE,
            Some(config.app_url()),
            config.app_role(),
        ),
        (
            vars::AURA_DB_MIGRATE_URL,
            vars::AURA_DB_MIGRATE_ROLE,
            config.migrate_url(),
            config.migrate_role(),
        ),
    ];
    for (i, (var, role_var, dsn, role)) in urls.into_iter().enumerate() {
        let Some(dsn) = dsn.filter(|_| given(var)) else {
            continue;
        };
        if let Some(user) = dsn.user().filter(|u| u != role) {
            return Err(format!(
                "{var} logs in as {user}, but the role to provision is {role} ({role_var}): \
                 set {role_var}={user}"
            ));
        }
        let Some(password) = dsn
            .pg_config()
            .get_password()
            .map(|p| SecretString::from(String::from_utf8_lossy(p).into_owned()))
        else {
            continue;
        };
        if i == 0 {
            spec.password = password;
            spec.password_source = var.to_owned();
        } else {
            spec.migrate_password = Some(password);
            spec.migrate_password_source = var.to_owned();
        }
    }
    Ok(spec)
}
