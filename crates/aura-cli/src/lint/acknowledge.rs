//! Acknowledgements: squawk's own ignore comments, with the reason this project requires.
//!
//! ```sql
//! -- squawk-ignore adding-not-nullable-field -- turns has no rows yet in any deployment
//! ALTER TABLE turns ADD COLUMN kind text NOT NULL;
//! ```
//!
//! `squawk-ignore <rules>` covers its own line and the next (the statement after it);
//! `squawk-ignore-file <rules>` the whole `up.sql`. squawk reads the rule names and drops
//! the text after a second `--`, which is where the reason goes; the lint shows each
//! acknowledged finding with it, and refuses an acknowledgement without a reason, without
//! a rule name (squawk's `squawk-ignore-file` with no names ignores everything) or naming
//! no squawk rule.

use squawk_linter::Rule;
use squawk_syntax::{Parse, SourceFile, SyntaxKind};

use super::finding::line_col;

const LINE: &str = "squawk-ignore";
const FILE: &str = "squawk-ignore-file";
/// What the keyword is replaced with to lint a file as if it acknowledged nothing: same
/// length (offsets and lines stay), not a prefix squawk recognises.
const NEUTRAL: &str = "squawk-IGNORE";

/// One `squawk-ignore` / `squawk-ignore-file` comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// 1-based line of the comment.
    pub line: usize,
    /// Byte offset of the keyword in the file.
    pub offset: usize,
    /// `squawk-ignore-file`: the whole file.
    pub file_wide: bool,
    /// The rules it names that squawk knows.
    pub rules: Vec<Rule>,
    /// The names it gives that are no squawk rule.
    pub unknown: Vec<String>,
    /// It names anything at all, known or not.
    pub named: bool,
    /// The text after the second `--`, trimmed; `None` when empty.
    pub reason: Option<String>,
}

impl Ack {
    /// True when this acknowledgement covers a finding of `rule` starting on `line`, as
    /// squawk decides it (the comment's line or the one before the finding).
    pub fn covers(&self, rule: Rule, line: usize) -> bool {
        self.rules.contains(&rule) && (self.file_wide || self.line == line || self.line + 1 == line)
    }
}

/// Every acknowledgement comment of a parsed file.
pub fn find(parse: &Parse<SourceFile>, text: &str) -> Vec<Ack> {
    parse
        .syntax_node()
        .descendants_with_tokens()
        .filter_map(|element| element.into_token())
        .filter(|token| token.kind() == SyntaxKind::COMMENT)
        .filter_map(|token| {
            let start = usize::from(token.text_range().start());
            parse_comment(token.text()).map(|(at, file_wide, names, reason)| {
                let offset = start + at;
                let (line, _) = line_col(text, offset);
                let (mut rules, mut unknown) = (Vec::new(), Vec::new());
                for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match Rule::try_from(name) {
                        Ok(rule) => rules.push(rule),
                        Err(_) => unknown.push(name.to_owned()),
                    }
                }
                Ack {
                    line,
                    offset,
                    file_wide,
                    named: !rules.is_empty() || !unknown.is_empty(),
                    rules,
                    unknown,
                    reason,
                }
            })
        })
        .collect()
}

/// `-- squawk-ignore a, b -- why` -> (offset of the keyword in the comment, file-wide,
/// `" a, b "`, `Some("why")`), as squawk reads it: the keyword right after the comment
/// marker and blanks, the names up to a second `--`.
fn parse_comment(comment: &str) -> Option<(usize, bool, &str, Option<String>)> {
    let body = comment.strip_prefix("--").or_else(|| {
        comment
            .strip_prefix("/*")
            .and_then(|c| c.strip_suffix("*/"))
    })?;
    let trimmed = body.trim_start();
    let at = 2 + body.len() - trimmed.len();
    let (file_wide, rest) = match trimmed.strip_prefix(FILE) {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix(LINE)?),
    };
    // `squawk-ignorefoo` names `foo`, as squawk reads it (an unknown rule).
    let (names, reason) = match rest.split_once("--") {
        Some((names, reason)) => (names, Some(reason.trim().to_owned())),
        None => (rest, None),
    };
    Some((at, file_wide, names, reason.filter(|r| !r.is_empty())))
}

/// `text` with every acknowledgement's keyword made unrecognisable to squawk (same
/// length), so that linting it finds what the acknowledgements cover.
pub fn neutralized(text: &str, acks: &[Ack]) -> String {
    let mut out = text.to_owned();
    for ack in acks {
        out.replace_range(ack.offset..ack.offset + LINE.len(), NEUTRAL);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks(sql: &str) -> Vec<Ack> {
        find(&SourceFile::parse(sql), sql)
    }

    #[test]
    fn reads_rules_and_reason_as_squawk_does() {
        let sql = "SELECT 1;\n-- squawk-ignore renaming-column, ban-drop-column -- old name unused since 1.4\n\
                   ALTER TABLE t RENAME COLUMN a TO b;\n/* squawk-ignore-file changing-column-type */\n";
        let found = acks(sql);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].line, 2);
        assert_eq!(&sql[found[0].offset..][..13], "squawk-ignore");
        assert!(!found[0].file_wide);
        assert_eq!(
            found[0].rules,
            vec![Rule::RenamingColumn, Rule::BanDropColumn]
        );
        assert_eq!(
            found[0].reason.as_deref(),
            Some("old name unused since 1.4")
        );
        assert!(found[0].covers(Rule::RenamingColumn, 3));
        assert!(!found[0].covers(Rule::RenamingColumn, 4));
        assert!(!found[0].covers(Rule::ChangingColumnType, 3));
        assert!(found[1].file_wide && found[1].reason.is_none());
        assert!(found[1].covers(Rule::ChangingColumnType, 1));
        assert!(found.iter().all(|a| a.named));
        let blank = acks("-- squawk-ignore-file -- why\n-- squawk-ignore no-such-rule -- why\n");
        assert_eq!(
            blank
                .iter()
                .map(|a| (a.named, a.rules.len()))
                .collect::<Vec<_>>(),
            [(false, 0), (true, 0)]
        );
        assert_eq!(blank[1].unknown, ["no-such-rule"]);
        let plain = neutralized(sql, &found);
        assert_eq!(plain.len(), sql.len());
        assert!(acks(&plain).is_empty(), "{plain}");
    }

    #[test]
    fn other_comments_are_not_acknowledgements() {
        for sql in [
            "-- squawk ignore renaming-column\nSELECT 1;",
            "-- ignore: squawk-ignore renaming-column\nSELECT 1;",
            "SELECT '-- squawk-ignore renaming-column';",
        ] {
            assert!(acks(sql).is_empty(), "{sql}");
        }
    }
}
