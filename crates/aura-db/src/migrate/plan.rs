//! Comparing what the database has applied with a set of migrations, before anything runs:
//! an applied migration this set does not know, or whose `up.sql` changed, is refused.

use super::error::MigrateError;
use super::set::{Migration, Migrations};
use super::tracking::AppliedRow;

/// What a run will do.
#[derive(Debug, Default)]
pub(crate) struct Plan<'a> {
    /// Applied and verified (or adopted), oldest first.
    pub(crate) applied: Vec<&'a Migration>,
    /// Applied without a recorded checksum (by diesel CLI): to record now.
    pub(crate) adopt: Vec<&'a Migration>,
    /// Not applied yet, oldest first.
    pub(crate) pending: Vec<&'a Migration>,
}

/// Verifies `rows` (oldest first) against `set` and lists what is pending. The first
/// problem in version order is the error.
pub(crate) fn plan<'a>(set: &'a Migrations, rows: &[AppliedRow]) -> Result<Plan<'a>, MigrateError> {
    let mut plan = Plan::default();
    for row in rows {
        let m = set
            .get(&row.version)
            .ok_or_else(|| MigrateError::UnknownApplied {
                version: row.version.clone(),
            })?;
        match &row.checksum {
            Some(recorded) if recorded != m.checksum() => {
                return Err(MigrateError::ChecksumMismatch {
                    version: m.version().to_owned(),
                    name: m.name().to_owned(),
                    recorded: recorded.clone(),
                    actual: m.checksum().to_owned(),
                });
            }
            Some(_) => {}
            None => plan.adopt.push(m),
        }
        plan.applied.push(m);
    }
    plan.pending = set
        .iter()
        .filter(|m| {
            rows.binary_search_by(|r| r.version.as_str().cmp(m.version()))
                .is_err()
        })
        .collect();
    Ok(plan)
}
