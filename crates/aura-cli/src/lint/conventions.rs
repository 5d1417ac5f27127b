//! The project's own checks, for what squawk has no rule for: how `run_in_transaction`
//! and `CONCURRENTLY` go together (migrations/README.md rule 6).
//!
//! - `concurrently-in-transaction`: a `CONCURRENTLY` statement (`CREATE INDEX`, `DROP
//!   INDEX`, `REINDEX`, `DETACH PARTITION`) in a migration the runner wraps in a
//!   transaction. squawk's `ban-concurrent-index-creation-in-transaction` lets a file of
//!   that one statement pass (other tools run such files outside a transaction; ours does
//!   not), so that rule is off and this one replaces it.
//! - `not-alone-without-transaction`: a `run_in_transaction = false` migration holding
//!   more than one statement: a failure half-way leaves the first ones applied.

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{Parse, SourceFile, SyntaxKind};

use super::Source;
use super::finding::{Finding, Level};

/// The findings of the project's own checks on one parsed `up.sql`.
pub fn check(source: &Source, parse: &Parse<SourceFile>) -> Vec<Finding> {
    let stmts: Vec<ast::Stmt> = parse.tree().stmts().collect();
    let finding = |stmt: &ast::Stmt, rule: &str, message: &str, help: &str| {
        let offset = stmt
            .syntax()
            .children_with_tokens()
            .find(|e| !e.kind().is_trivia())
            .map_or(stmt.syntax().text_range().start(), |e| {
                e.text_range().start()
            });
        let (rule, message, help) = (rule.to_owned(), message.to_owned(), help.to_owned());
        Finding::at(
            source,
            usize::from(offset),
            rule,
            message,
            Some(help),
            Level::Error,
        )
    };
    let mut findings = Vec::new();
    if source.in_transaction {
        for stmt in stmts.iter().filter(|s| is_concurrently(s)) {
            findings.push(finding(
                stmt,
                "concurrently-in-transaction",
                "CONCURRENTLY cannot run inside the transaction the runner wraps this \
                 migration in (SQLSTATE 25001).",
                "put the statement alone in a migration of its own whose metadata.toml says \
                 run_in_transaction = false",
            ));
        }
    } else if stmts.len() > 1 {
        findings.push(finding(
            &stmts[1],
            "not-alone-without-transaction",
            "a migration with run_in_transaction = false holds more than one statement: a \
             failure half-way leaves the ones before it applied.",
            "keep only the CONCURRENTLY statement here and move the others to migrations of \
             their own (in a transaction)",
        ));
    }
    findings
}

/// A statement that cannot run in a transaction block because of `CONCURRENTLY`
/// (`REFRESH MATERIALIZED VIEW CONCURRENTLY` can).
fn is_concurrently(stmt: &ast::Stmt) -> bool {
    !matches!(stmt, ast::Stmt::Refresh(_))
        && stmt
            .syntax()
            .descendants_with_tokens()
            .any(|e| e.kind() == SyntaxKind::CONCURRENTLY_KW)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sql: &str, in_transaction: bool) -> Vec<String> {
        let source = Source {
            migration: "1_x".to_owned(),
            file: "1_x/up.sql".to_owned(),
            sql: sql.to_owned(),
            in_transaction,
        };
        check(&source, &SourceFile::parse(sql))
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    #[test]
    fn concurrently_needs_a_migration_of_its_own() {
        for sql in [
            "CREATE INDEX CONCURRENTLY i ON t (x);",
            "DROP INDEX CONCURRENTLY i;",
            "REINDEX INDEX CONCURRENTLY i;",
            "ALTER TABLE t DETACH PARTITION p CONCURRENTLY;",
        ] {
            assert_eq!(rules(sql, true), ["concurrently-in-transaction"], "{sql}");
            assert!(rules(sql, false).is_empty(), "{sql}");
        }
        for sql in [
            "CREATE INDEX i ON t (x);",
            "REFRESH MATERIALIZED VIEW CONCURRENTLY v;",
        ] {
            assert!(rules(sql, true).is_empty(), "{sql}");
        }
        assert_eq!(
            rules("CREATE INDEX CONCURRENTLY i ON t (x);\nSELECT 1;", false),
            ["not-alone-without-transaction"]
        );
    }
}
