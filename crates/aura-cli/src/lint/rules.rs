//! The one place the migration lint is configured: which of squawk's rules are off here
//! and why, which findings only warn, the Postgres version the rules assume, and the
//! project's own advice where squawk's help does not say what to do in this repository.
//!
//! Every rule not listed here runs with squawk's defaults and is an error. The README
//! (section *Adding a migration*) and `migrations/README.md` point here.

use squawk_linter::{Linter, LinterSettings, Rule, Version};

/// The oldest PostgreSQL the project supports (README, *Postgres versions*): rules whose
/// verdict depends on the version (a constant `DEFAULT` is instant since 11) assume it.
pub const PG_VERSION: &str = "15";

/// squawk rules turned off for this project, with the reason (shown by `aura db lint
/// --rules`). Opt-in rules squawk leaves off anyway are listed when a reader would expect
/// them on.
pub const OFF: &[(Rule, &str)] = &[
    (
        Rule::PreferRobustStmts,
        "IF NOT EXISTS on CREATE INDEX CONCURRENTLY would silently keep the INVALID index a \
         failed build leaves behind (migrations/README.md rule 6: drop it, then re-run); a \
         transactional migration is atomic anyway",
    ),
    (
        Rule::BanConcurrentIndexCreationInTransaction,
        "replaced by the lint's own concurrently-in-transaction, which also flags a migration \
         of that one statement (squawk lets it pass: other tools run such files outside a \
         transaction; aura's runner does not)",
    ),
    (
        Rule::PreferIdentity,
        "ids are UUIDv7 made by the application; identity and serial columns are both banned \
         (migrations/README.md rule 9, Citus)",
    ),
    (
        Rule::RequireLockTimeout,
        "the runner gives every migration session a lock_timeout (the migrate role's, else 5 s: \
         aura-db's migrate/session.rs), so a migration need not set one",
    ),
    (
        Rule::RequireStatementTimeout,
        "statement_timeout is unbounded for migrations on purpose: a CONCURRENTLY build or a \
         VALIDATE on a big table takes long and holds no lock that blocks the application",
    ),
    (
        Rule::RequireTableSchema,
        "schema-qualify nothing (migrations/README.md rule 8): the session's search_path is aura",
    ),
];

/// Rules whose findings are warnings (printed, exit code 0): type advice, not a lock that
/// stops the application.
pub const WARN: &[Rule] = &[
    Rule::PreferBigintOverInt,
    Rule::PreferBigintOverSmallint,
    Rule::PreferTextField,
    Rule::PreferTimestampTz,
    Rule::BanCharField,
];

/// What to do instead, in this project's terms, where squawk's help does not say it.
pub fn advice(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::RequireConcurrentIndexCreation => {
            "create it with CREATE INDEX CONCURRENTLY, alone in its own migration whose \
             metadata.toml says run_in_transaction = false"
        }
        Rule::RequireConcurrentIndexDeletion => {
            "drop it with DROP INDEX CONCURRENTLY, alone in its own migration whose \
             metadata.toml says run_in_transaction = false"
        }
        Rule::AddingNotNullableField | Rule::AddingRequiredField => {
            "add the column nullable (or with a constant DEFAULT), backfill in batches, then \
             add a CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration and \
             only then SET NOT NULL"
        }
        Rule::ChangingColumnType => {
            "expand/contract: add a column of the new type, write both, backfill, switch \
             reads, then drop the old column in a later release"
        }
        Rule::ConstraintMissingNotValid | Rule::AddingForeignKeyConstraint => {
            "add the constraint NOT VALID here and VALIDATE CONSTRAINT in a later migration"
        }
        Rule::RenamingColumn | Rule::RenamingTable | Rule::RenamingObject => {
            "never rename under a running application: add the new one, write both, backfill, \
             switch reads, drop the old one in a later release"
        }
        Rule::TransactionNesting | Rule::BanUncommittedTransaction => {
            "write no BEGIN/COMMIT/ROLLBACK: the runner runs each migration in one \
             transaction (migrations/README.md rule 5)"
        }
        _ => return None,
    })
}

/// True when a finding of `rule` fails the lint (exit code 1).
pub fn is_error(rule: Rule) -> bool {
    !WARN.contains(&rule)
}

/// A squawk linter with this project's rules, for one `up.sql`: `in_transaction` is the
/// migration's `run_in_transaction` (the runner wraps it in a transaction, so BEGIN/COMMIT
/// in it and CONCURRENTLY statements are flagged). One linter per file: squawk keeps the
/// findings of every file it linted.
pub fn linter(in_transaction: bool) -> Linter {
    let off: Vec<Rule> = OFF.iter().map(|(rule, _)| *rule).collect();
    let mut linter = Linter::with_rules(&[], &off);
    linter.settings = LinterSettings {
        pg_version: PG_VERSION.parse::<Version>().unwrap_or_default(),
        assume_in_transaction: in_transaction,
    };
    linter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_holds_together() {
        assert!(PG_VERSION.parse::<Version>().is_ok());
        let linter = linter(true);
        for (rule, why) in OFF {
            assert!(!linter.rules.contains(rule), "{rule} is off");
            assert!(!why.is_empty());
            assert!(!WARN.contains(rule), "{rule} is off, not a warning");
        }
        assert!(linter.rules.contains(&Rule::RequireConcurrentIndexCreation));
        assert!(linter.rules.contains(&Rule::TransactionNesting));
        assert!(linter.settings.assume_in_transaction);
        assert!(!super::linter(false).settings.assume_in_transaction);
    }
}
