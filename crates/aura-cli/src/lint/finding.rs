//! [`Finding`]: one thing the lint says about one migration.

use super::Source;

/// How a finding counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Fails the lint (exit code 1).
    Error,
    /// Printed; does not fail the lint.
    Warning,
    /// Would be an error or a warning, but the migration acknowledges it with a reason.
    Acknowledged,
}

impl Level {
    /// `error`, `warning`, `acknowledged`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Acknowledged => "acknowledged",
        }
    }
}

/// One finding, located in a migration's `up.sql`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The migration's folder name (`2026-11-23-000002_create_turns`).
    pub migration: String,
    /// The file as shown to the user (the path as given, or `migrations/<folder>/up.sql`
    /// for an embedded migration).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The squawk rule (`require-concurrent-index-creation`), or one of the lint's own
    /// about acknowledgements (`acknowledgement-without-reason`, …).
    pub rule: String,
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    pub help: Option<String>,
    /// How it counts.
    pub level: Level,
    /// For [`Level::Acknowledged`]: the reason the migration gives.
    pub reason: Option<String>,
}

impl Finding {
    /// A finding about `source` at the byte `offset` of its `up.sql`.
    pub fn at(
        source: &Source,
        offset: usize,
        rule: String,
        message: String,
        help: Option<String>,
        level: Level,
    ) -> Finding {
        let (line, column) = line_col(&source.sql, offset);
        Finding {
            migration: source.migration.clone(),
            file: source.file.clone(),
            line,
            column,
            rule,
            message,
            help,
            level,
            reason: None,
        }
    }
}

/// 1-based line and column (in characters) of the byte `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_from_one() {
        let text = "ab\ncé d\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, "ab\ncé ".len()), (2, 4));
        assert_eq!(line_col(text, text.len()), (3, 1));
    }
}
