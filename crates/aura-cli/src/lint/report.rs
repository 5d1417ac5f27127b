//! How findings are printed: one line each, as text (`file:line:col: level [rule] …`), as
//! GitHub Actions workflow commands (`::error file=…,line=…::…`), which annotate the
//! pull request's diff, or as the rows of a Markdown table (for a PR comment or
//! `$GITHUB_STEP_SUMMARY`).

use super::finding::{Finding, Level};

/// The output formats of `aura db lint --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `migrations/…/up.sql:3:1: error [rule] what is wrong. Instead: what to do.`
    Text,
    /// `::error file=migrations/…/up.sql,line=3,col=1,title=rule::…` (GitHub Actions).
    Github,
    /// `| migrations/…/up.sql:3:1 | error | rule | … |`, under a header row.
    Markdown,
}

/// The lines printed before the findings: the table header for Markdown.
pub fn header(format: Format) -> Option<&'static str> {
    (format == Format::Markdown).then_some("| where | level | rule | finding |\n|---|---|---|---|")
}

/// The line for one finding.
pub fn line(finding: &Finding, format: Format) -> String {
    let mut what = one_line(&finding.message);
    match (finding.level, &finding.help) {
        (Level::Acknowledged, _) => {
            let reason = finding.reason.as_deref().unwrap_or("(no reason given)");
            what.push_str(&format!(" Acknowledged: {}", one_line(reason)));
        }
        (_, Some(help)) => what.push_str(&format!(" Instead: {}", one_line(help))),
        (_, None) => {}
    }
    match format {
        Format::Text => format!(
            "{}:{}:{}: {} [{}] {what}",
            finding.file,
            finding.line,
            finding.column,
            finding.level.as_str(),
            finding.rule
        ),
        Format::Github => format!(
            "::{} file={},line={},col={},title={}::{}",
            match finding.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Acknowledged => "notice",
            },
            property(&finding.file),
            finding.line,
            finding.column,
            property(&format!(
                "{} ({}, migration {})",
                finding.rule,
                finding.level.as_str(),
                finding.migration
            )),
            data(&what)
        ),
        Format::Markdown => format!(
            "| `{}:{}:{}` | {} | `{}` | {} |",
            finding.file,
            finding.line,
            finding.column,
            finding.level.as_str(),
            finding.rule,
            what.replace('|', "\\|")
        ),
    }
}

/// `lint: 2 migrations, 1 error, 0 warnings, 1 acknowledged`.
pub fn summary(migrations: usize, findings: &[Finding]) -> String {
    let count = |level| findings.iter().filter(|f| f.level == level).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "lint: {}, {}, {}, {} acknowledged",
        plural(migrations, "migration"),
        plural(count(Level::Error), "error"),
        plural(count(Level::Warning), "warning"),
        count(Level::Acknowledged)
    )
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A workflow command's message: `%`, CR and LF escaped.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as [`data`], and `:` and `,` too.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(level: Level) -> Finding {
        Finding {
            migration: "1_add_index".to_owned(),
            file: "migrations/1_add_index/up.sql".to_owned(),
            line: 3,
            column: 1,
            rule: "require-concurrent-index-creation".to_owned(),
            message: "Blocks writes: 100%\nof the time".to_owned(),
            help: Some("Use CONCURRENTLY.".to_owned()),
            level,
            reason: Some("table is empty, see #12".to_owned()),
        }
    }

    #[test]
    fn text_is_one_line_per_finding() {
        assert_eq!(
            line(&finding(Level::Error), Format::Text),
            "migrations/1_add_index/up.sql:3:1: error [require-concurrent-index-creation] \
             Blocks writes: 100% of the time Instead: Use CONCURRENTLY."
        );
        assert!(
            line(&finding(Level::Acknowledged), Format::Text)
                .ends_with("Acknowledged: table is empty, see #12")
        );
    }

    #[test]
    fn github_escapes_its_separators() {
        assert_eq!(
            line(&finding(Level::Error), Format::Github),
            "::error file=migrations/1_add_index/up.sql,line=3,col=1,\
             title=require-concurrent-index-creation (error%2C migration 1_add_index)::\
             Blocks writes: 100%25 of the time Instead: Use CONCURRENTLY."
        );
        assert!(line(&finding(Level::Warning), Format::Github).starts_with("::warning "));
        assert!(line(&finding(Level::Acknowledged), Format::Github).starts_with("::notice "));
    }

    #[test]
    fn markdown_is_a_table_row_under_a_header() {
        let mut f = finding(Level::Error);
        f.message = "a | b".to_owned();
        assert_eq!(
            line(&f, Format::Markdown),
            "| `migrations/1_add_index/up.sql:3:1` | error | `require-concurrent-index-creation` \
             | a \\| b Instead: Use CONCURRENTLY. |"
        );
        let header = header(Format::Markdown).expect("a header");
        assert_eq!(header.lines().count(), 2);
        assert_eq!(header.matches('|').count(), 10);
        assert!(super::header(Format::Text).is_none());
    }

    #[test]
    fn summary_counts_levels() {
        let all = [
            finding(Level::Error),
            finding(Level::Error),
            finding(Level::Acknowledged),
        ];
        assert_eq!(
            summary(1, &all),
            "lint: 1 migration, 2 errors, 0 warnings, 1 acknowledged"
        );
    }
}
