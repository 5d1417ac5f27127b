//! `aura db …`: the Aura database.

use std::process::ExitCode;

use crate::cli::DbCommand;
use crate::local_default;

pub async fn run(cmd: DbCommand) -> Result<ExitCode, String> {
    match cmd {
        DbCommand::Ping => ping().await,
    }
}

async fn ping() -> Result<ExitCode, String> {
    let (config, _local) = local_default::config().await?;
    let pool = aura_db::open(&config).await.map_err(|e| e.to_string())?;
    let rtt = aura_db::ping(&pool).await.map_err(|e| e.to_string())?;
    println!(
        "ok: {} answered in {:.3} ms",
        config.app_url().redacted(),
        rtt.as_secs_f64() * 1000.0
    );
    Ok(ExitCode::SUCCESS)
}
