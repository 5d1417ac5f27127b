//! Splitting a migration file into statements, the way psql does, so that each statement
//! runs on its own and a failure can name the statement (its number and first line).
//!
//! Std only: `build.rs` includes this file too, so a migration that cannot be split fails
//! the build, not the deployment.
//!
//! Understood: `'…'` strings with `''` escapes (standard_conforming_strings = on, which the
//! runner sets), `E'…'` strings with backslash escapes, `"…"` identifiers, `$tag$…$tag$`
//! bodies, `--` and nested `/* */` comments, parentheses (a `;` inside them, as in
//! `CREATE RULE … DO (…; …)`, does not end the statement) and `BEGIN ATOMIC … END` bodies of
//! `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (psql's heuristic: BEGIN/CASE open, END closes).

/// One statement of a file: byte range of its text (from its first token up to, not
/// including, the terminating `;`) and the 1-based line where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stmt {
    /// Byte offset of the statement's first token.
    pub(crate) start: usize,
    /// Byte offset just past its last character before `;` (or the end of the file).
    pub(crate) end: usize,
    /// 1-based line of `start`.
    pub(crate) line: usize,
}

impl Stmt {
    /// The statement's text within `sql` (the file it was split from).
    pub(crate) fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.start..self.end]
    }

    /// The first line of the statement, trimmed and cut to `max` characters (with `…`).
    pub(crate) fn first_line(&self, sql: &str, max: usize) -> String {
        let line = self.text(sql).lines().next().unwrap_or("").trim();
        if line.chars().count() > max {
            let cut: String = line.chars().take(max).collect();
            format!("{cut}…")
        } else {
            line.to_owned()
        }
    }

    /// The statement's first keyword, upper-cased (`CREATE`, `BEGIN`, …), if it starts
    /// with a plain word.
    pub(crate) fn first_keyword(&self, sql: &str) -> Option<String> {
        let word: String = self
            .text(sql)
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!word.is_empty()).then(|| word.to_ascii_uppercase())
    }
}

/// Why a file could not be split: an unterminated quote or comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitError {
    /// 1-based line where the unterminated construct starts.
    pub(crate) line: usize,
    /// What is unterminated.
    pub(crate) what: &'static str,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unterminated {} starting at line {}",
            self.what, self.line
        )
    }
}

/// Per-statement scanner state.
#[derive(Default)]
struct Current {
    start: Option<usize>,
    paren: i64,
    begin_depth: i64,
    /// Initials of the leading CREATE / OR / REPLACE / FUNCTION / PROCEDURE words (psql's
    /// trick): `c f`, `c p`, `c o r f`, `c o r p` mark a routine definition.
    initials: [u8; 4],
    words: usize,
}

impl Current {
    fn token(&mut self, at: usize) {
        if self.start.is_none() {
            self.start = Some(at);
        }
    }

    fn in_routine(&self) -> bool {
        let i = &self.initials;
        i[0] == b'c'
            && (i[1] == b'f'
                || i[1] == b'p'
                || (i[1] == b'o' && i[2] == b'r' && matches!(i[3], b'f' | b'p')))
    }

    fn word(&mut self, word: &str) {
        let lower = word.to_ascii_lowercase();
        if self.words < self.initials.len()
            && matches!(
                lower.as_str(),
                "create" | "or" | "replace" | "function" | "procedure"
            )
        {
            self.initials[self.words] = lower.as_bytes()[0];
        }
        self.words += 1;
        if self.in_routine() && self.paren == 0 {
            match lower.as_str() {
                "begin" => self.begin_depth += 1,
                "case" if self.begin_depth >= 1 => self.begin_depth += 1,
                "end" if self.begin_depth > 0 => self.begin_depth -= 1,
                _ => {}
            }
        }
    }
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_dollar_tag_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// Splits `sql` into its statements. Statements made only of whitespace and comments are
/// dropped; the others keep their order.
pub(crate) fn split(sql: &str) -> Result<Vec<Stmt>, SplitError> {
    let b = sql.as_bytes();
    let line_at = |pos: usize| 1 + b[..pos].iter().filter(|&&c| c == b'\n').count();
    let mut out = Vec::new();
    let mut cur = Current::default();
    let mut last_token_end = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let open = i;
                let mut depth = 0usize;
                loop {
                    if i + 1 >= b.len() {
                        return Err(SplitError {
                            line: line_at(open),
                            what: "/* comment",
                        });
                    }
                    if b[i] == b'/' && b[i + 1] == b'*' {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b[i + 1] == b'/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => {
                cur.token(i);
                i = skip_string(b, i, false).ok_or_else(|| SplitError {
                    line: line_at(i),
                    what: "string literal",
                })?;
                last_token_end = i;
            }
            b'"' => {
                cur.token(i);
                i = skip_quoted_ident(b, i).ok_or_else(|| SplitError {
                    line: line_at(i),
                    what: "quoted identifier",
                })?;
                last_token_end = i;
            }
            b'$' => {
                cur.token(i);
                match dollar_tag(b, i) {
                    Some(tag_end) => {
                        let tag = &b[i..tag_end];
                        let body_end = find(b, tag_end, tag).ok_or_else(|| SplitError {
                            line: line_at(i),
                            what: "dollar-quoted string",
                        })?;
                        i = body_end + tag.len();
                    }
                    None => {
                        // `$1` (a parameter) or a stray `$`.
                        i += 1;
                        while i < b.len() && b[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                }
                last_token_end = i;
            }
            _ if is_ident_start(c) => {
                cur.token(i);
                let start = i;
                while i < b.len() && is_ident_cont(b[i]) {
                    i += 1;
                }
                let word = &sql[start..i];
                if (word == "e" || word == "E") && b.get(i) == Some(&b'\'') {
                    i = skip_string(b, i, true).ok_or_else(|| SplitError {
                        line: line_at(start),
                        what: "E'' string literal",
                    })?;
                } else {
                    cur.word(word);
                }
                last_token_end = i;
            }
            _ if c.is_ascii_digit() => {
                cur.token(i);
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
                last_token_end = i;
            }
            b';' if cur.paren == 0 && cur.begin_depth == 0 => {
                if let Some(start) = cur.start {
                    out.push(Stmt {
                        start,
                        end: last_token_end,
                        line: line_at(start),
                    });
                }
                cur = Current::default();
                i += 1;
            }
            _ => {
                cur.token(i);
                match c {
                    b'(' => cur.paren += 1,
                    b')' => cur.paren -= 1,
                    _ => {}
                }
                i += 1;
                last_token_end = i;
            }
        }
    }
    if let Some(start) = cur.start {
        out.push(Stmt {
            start,
            end: last_token_end,
            line: line_at(start),
        });
    }
    Ok(out)
}

/// Skips a `'…'` literal starting at `open`; `backslash` for `E'…'`. Returns the index past
/// the closing quote.
fn skip_string(b: &[u8], open: usize, backslash: bool) -> Option<usize> {
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if backslash => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn skip_quoted_ident(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < b.len() {
        if b[i] == b'"' {
            if b.get(i + 1) == Some(&b'"') {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// If a dollar-quote opening tag (`$$`, `$body$`) starts at `i`, the index past it.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if j < b.len() && b[j] == b'$' {
        return Some(j + 1);
    }
    if j >= b.len() || !is_ident_start(b[j]) {
        return None;
    }
    while j < b.len() && is_dollar_tag_cont(b[j]) {
        j += 1;
    }
    (j < b.len() && b[j] == b'$').then_some(j + 1)
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<&str> {
        split(sql)
            .expect("splits")
            .iter()
            .map(|s| s.text(sql))
            .collect()
    }

    #[test]
    fn plain_statements_and_comments() {
        let sql = "-- leading comment\nCREATE TABLE a (x int);\n\n/* block; with ; */\nCREATE TABLE b (y int) ; ;\n-- only a comment;\n";
        assert_eq!(
            texts(sql),
            ["CREATE TABLE a (x int)", "CREATE TABLE b (y int)"]
        );
        let stmts = split(sql).expect("splits");
        assert_eq!(stmts[0].line, 2);
        assert_eq!(stmts[1].line, 5);
    }

    #[test]
    fn last_statement_without_semicolon() {
        assert_eq!(
            texts("SELECT 1; SELECT 2 -- trailing\n"),
            ["SELECT 1", "SELECT 2"]
        );
        assert!(texts("  -- nothing\n /* at all */ ").is_empty());
    }

    #[test]
    fn quotes_hide_semicolons() {
        let sql = r#"INSERT INTO t VALUES ('a;b', 'it''s; fine', E'back\'slash;', "we;ird""id");
SELECT $$ ; $$, $fn$ body; $$ still $fn$, $1;
COMMENT ON TABLE t IS U&'d\0061t;a';
SELECT B'0101', X'1F', N'x;y'"#;
        let t = texts(sql);
        assert_eq!(t.len(), 4, "{t:#?}");
        assert!(t[0].ends_with("\"we;ird\"\"id\")"));
        assert!(t[1].starts_with("SELECT $$ ; $$"));
        assert!(t[2].starts_with("COMMENT ON"));
    }

    #[test]
    fn identifiers_with_dollars_are_not_dollar_quotes() {
        // `a$b$c` is an identifier; were it read as a `$b$` quote, the `;` would be hidden.
        assert_eq!(
            texts("SELECT a$b$c FROM t; SELECT 2"),
            ["SELECT a$b$c FROM t", "SELECT 2"]
        );
    }

    #[test]
    fn nested_block_comments() {
        assert_eq!(
            texts("/* a /* b; */ c; */ SELECT 1; SELECT 2"),
            ["SELECT 1", "SELECT 2"]
        );
    }

    #[test]
    fn function_bodies() {
        let sql = "CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$;\n\
                   CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND;\n\
                   CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;\n\
                   SELECT 3";
        let t = texts(sql);
        assert_eq!(t.len(), 4, "{t:#?}");
        assert!(t[1].ends_with("SELECT 2;\nEND"), "{}", t[1]);
        assert!(t[2].ends_with("VALUES (1); END"), "{}", t[2]);
        assert_eq!(t[3], "SELECT 3");
    }

    #[test]
    fn begin_outside_routines_is_a_plain_statement() {
        assert_eq!(texts("BEGIN; SELECT 1; END;"), ["BEGIN", "SELECT 1", "END"]);
        let s = split("  begin;").expect("splits");
        assert_eq!(s[0].first_keyword("  begin;").as_deref(), Some("BEGIN"));
    }

    #[test]
    fn parentheses_hold_semicolons() {
        let sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 1";
        assert_eq!(texts(sql).len(), 2);
    }

    #[test]
    fn unterminated_constructs_are_errors() {
        for (sql, what, line) in [
            ("SELECT 'abc;\n", "string literal", 1),
            ("SELECT 1;\nSELECT \"x;", "quoted identifier", 2),
            ("SELECT $q$ x; $$", "dollar-quoted string", 1),
            ("SELECT 1;\n\n/* /* */", "/* comment", 3),
            ("SELECT E'\\';", "E'' string literal", 1),
        ] {
            let err = split(sql).expect_err(sql);
            assert_eq!((err.what, err.line), (what, line), "{sql}");
        }
    }

    #[test]
    fn first_line_is_cut() {
        let sql = "  CREATE TABLE a_rather_long_table_name (\n x int\n)";
        let s = split(sql).expect("splits")[0];
        assert_eq!(
            s.first_line(sql, 80),
            "CREATE TABLE a_rather_long_table_name ("
        );
        assert_eq!(s.first_line(sql, 12), "CREATE TABLE…");
    }
}
