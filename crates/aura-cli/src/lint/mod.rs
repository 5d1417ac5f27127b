//! `aura db lint`: migrations checked with [squawk](https://squawkhq.com)'s linter
//! (`squawk-linter`, in process) for DDL that would lock a busy table, under this project's
//! rules ([`rules`]: the one place rules are turned off or made warnings) and
//! acknowledgements ([`acknowledge`]: squawk's ignore comments, with a reason).
//!
//! Lives in the CLI: neither the pool nor the store links squawk.

pub mod acknowledge;
pub mod conventions;
pub mod finding;
pub mod report;
pub mod rules;

use squawk_linter::{Rule, Violation};
use squawk_syntax::{Parse, SourceFile};

pub use finding::{Finding, Level};

/// One `up.sql` to lint.
#[derive(Debug, Clone)]
pub struct Source {
    /// The migration's folder name.
    pub migration: String,
    /// The file as shown to the user.
    pub file: String,
    /// Its text.
    pub sql: String,
    /// The migration's `run_in_transaction`.
    pub in_transaction: bool,
}

/// A source squawk parsed without a syntax error.
pub struct Parsed {
    source: Source,
    parse: Parse<SourceFile>,
}

/// Parses `source`; the first syntax error is a one-line error naming the file, line and
/// column, since a file squawk cannot parse cannot be vouched for.
pub fn parse(source: Source) -> Result<Parsed, String> {
    let parse = SourceFile::parse(&source.sql);
    if let Some(error) = parse.errors().first() {
        let (line, column) = finding::line_col(&source.sql, usize::from(error.range().start()));
        return Err(format!(
            "lint: {}:{line}:{column}: cannot parse the SQL of migration {}: {}",
            source.file,
            source.migration,
            error.message()
        ));
    }
    Ok(Parsed { source, parse })
}

/// The findings of one parsed `up.sql`, in file order: squawk's violations (errors or
/// warnings as [`rules`] says), those an acknowledgement covers as
/// [`Level::Acknowledged`] with its reason, and the lint's own findings about the
/// acknowledgements (no reason, no rule name, covering nothing) and the project's own
/// checks ([`conventions`]).
pub fn lint(parsed: &Parsed) -> Vec<Finding> {
    let Parsed { source, parse } = parsed;
    let text = &source.sql;
    let acks = acknowledge::find(parse, text);
    // What squawk reports (acknowledged ones left out), and what it reports when nothing
    // is acknowledged: the difference is what the acknowledgements cover.
    // squawk's `unused-ignore` (an unknown rule name) is left out: the lint reports
    // unknown names itself, also under a blanket `squawk-ignore-file` that hides squawk's.
    let squawk = |parse: &Parse<SourceFile>, text: &str| -> Vec<Violation> {
        let mut found = rules::linter(source.in_transaction).lint(parse, text);
        found.retain(|v| v.code != Rule::UnusedIgnore);
        found
    };
    let kept = squawk(parse, text);
    let plain_text = acknowledge::neutralized(text, &acks);
    let all = squawk(&SourceFile::parse(&plain_text), &plain_text);

    let mut findings = Vec::new();
    let mut used = vec![false; acks.len()];
    for v in &kept {
        findings.push(finding(source, v, level(v.code), None));
    }
    for v in all.iter().filter(|v| !kept.contains(v)) {
        let (line, _) = finding::line_col(text, usize::from(v.text_range.start()));
        // squawk also drops what a `squawk-ignore-file` naming no rule covers: that is no
        // acknowledgement here, so the finding keeps its level.
        match acks.iter().position(|a| a.covers(v.code, line)) {
            Some(i) => {
                used[i] = true;
                let reason = acks[i].reason.clone();
                findings.push(finding(source, v, Level::Acknowledged, reason));
            }
            None => findings.push(finding(source, v, level(v.code), None)),
        }
    }
    for (ack, used) in acks.iter().zip(used) {
        let own = |rule: &str, message: String, help: &str, level| {
            let help = Some(help.to_owned());
            Finding::at(source, ack.offset, rule.to_owned(), message, help, level)
        };
        if !ack.named {
            findings.push(own(
                "acknowledgement-without-rule",
                "this squawk-ignore names no rule".to_owned(),
                "name the rule it acknowledges: -- squawk-ignore <rule> -- <why it is safe here>",
                Level::Error,
            ));
        } else if !ack.unknown.is_empty() {
            findings.push(own(
                "acknowledgement-unknown-rule",
                format!(
                    "this squawk-ignore names {}, which is no squawk rule",
                    ack.unknown.join(", ")
                ),
                "use the rule name the finding shows in brackets (aura db lint --rules lists \
                 the ones off)",
                Level::Error,
            ));
        } else if ack.reason.is_none() {
            findings.push(own(
                "acknowledgement-without-reason",
                "this squawk-ignore gives no reason".to_owned(),
                "say why after the rule names: -- squawk-ignore <rule> -- <why it is safe here>",
                Level::Error,
            ));
        } else if !used && !ack.rules.is_empty() {
            findings.push(own(
                "acknowledgement-unused",
                "this squawk-ignore acknowledges no finding".to_owned(),
                "remove it, or move it to the line before the statement it is about",
                Level::Warning,
            ));
        }
    }
    findings.extend(conventions::check(source, parse));
    findings.sort_by_key(|f| (f.line, f.column));
    findings
}

fn level(rule: Rule) -> Level {
    if rules::is_error(rule) {
        Level::Error
    } else {
        Level::Warning
    }
}

fn finding(source: &Source, v: &Violation, level: Level, reason: Option<String>) -> Finding {
    let help = rules::advice(v.code)
        .map(str::to_owned)
        .or_else(|| v.help.clone());
    let offset = usize::from(v.text_range.start());
    let message = v.message.clone();
    Finding {
        reason,
        ..Finding::at(source, offset, v.code.to_string(), message, help, level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(sql: &str) -> Vec<(usize, String, Level)> {
        let source = Source {
            migration: "1_x".to_owned(),
            file: "1_x/up.sql".to_owned(),
            sql: sql.to_owned(),
            in_transaction: true,
        };
        lint(&parse(source).expect("parses"))
            .into_iter()
            .map(|f| (f.line, f.rule, f.level))
            .collect()
    }

    fn rule(line: usize, rule: &str, level: Level) -> (usize, String, Level) {
        (line, rule.to_owned(), level)
    }

    #[test]
    fn an_acknowledgement_needs_a_known_rule_and_a_reason() {
        let rename = "ALTER TABLE a RENAME TO b;";
        assert_eq!(
            found(&format!(
                "-- squawk-ignore renaming-table -- b is new\n{rename}"
            )),
            [rule(2, "renaming-table", Level::Acknowledged)]
        );
        assert_eq!(
            found(&format!("-- squawk-ignore renaming-table\n{rename}")),
            [
                rule(1, "acknowledgement-without-reason", Level::Error),
                rule(2, "renaming-table", Level::Acknowledged)
            ]
        );
        assert_eq!(
            found(&format!("-- squawk-ignore renamin-table -- typo\n{rename}")),
            [
                rule(1, "acknowledgement-unknown-rule", Level::Error),
                rule(2, "renaming-table", Level::Error)
            ]
        );
        // squawk's blanket ignore hides everything; here it acknowledges nothing.
        assert_eq!(
            found(&format!("-- squawk-ignore-file -- all fine\n{rename}")),
            [
                rule(1, "acknowledgement-without-rule", Level::Error),
                rule(2, "renaming-table", Level::Error)
            ]
        );
        assert_eq!(
            found(&format!(
                "-- squawk-ignore renaming-column -- stale\n{rename}"
            )),
            [
                rule(1, "acknowledgement-unused", Level::Warning),
                rule(2, "renaming-table", Level::Error)
            ]
        );
    }

    #[test]
    fn unparsable_sql_names_the_file_line_and_column() {
        let source = Source {
            migration: "1_x".to_owned(),
            file: "1_x/up.sql".to_owned(),
            sql: "SELECT 1;\nCREATE TABLE (;".to_owned(),
            in_transaction: true,
        };
        let err = parse(source).err().expect("a syntax error");
        assert!(
            err.starts_with("lint: 1_x/up.sql:2:")
                && err.contains("cannot parse the SQL of migration 1_x"),
            "{err}"
        );
    }
}
