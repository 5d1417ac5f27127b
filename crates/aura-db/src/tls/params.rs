//! The TLS settings of a connection string, taken out before tokio-postgres reads it.
//!
//! tokio-postgres 0.7 rejects `sslmode=verify-ca|verify-full` and does not know
//! `sslrootcert`, `sslcert`, `sslkey`: a URL psql accepts would not parse. They are cut out
//! of the text here (URL query or `key=value` form) and handled by [`super::settings`].

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// What a query value must escape: separators, `%` itself, and what is not URL text.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'=')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'`');

/// The keys handled here instead of by tokio-postgres.
const KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// TLS keys found in a connection string (values as written, decoded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    pub(crate) sslmode: Option<String>,
    pub(crate) sslrootcert: Option<String>,
    pub(crate) sslcert: Option<String>,
    pub(crate) sslkey: Option<String>,
}

impl TlsParams {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            "sslcert" => self.sslcert = Some(value),
            _ => self.sslkey = Some(value),
        }
    }

    /// `key=value` pairs in [`KEYS`] order, for re-composing a URL.
    fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("sslmode", &self.sslmode),
            ("sslrootcert", &self.sslrootcert),
            ("sslcert", &self.sslcert),
            ("sslkey", &self.sslkey),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }

    /// `?sslmode=…&…` (empty when nothing is set), percent-encoded.
    pub(crate) fn query(&self) -> String {
        let parts: Vec<String> = self
            .pairs()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// Splits `text` into the connection string without the TLS keys, and those keys.
pub(crate) fn split(text: &str) -> (String, TlsParams) {
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        split_url(text)
    } else {
        split_key_value(text)
    }
}

fn split_url(text: &str) -> (String, TlsParams) {
    let mut params = TlsParams::default();
    let Some((base, query)) = text.split_once('?') else {
        return (text.to_owned(), params);
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode_str(raw_key).decode_utf8_lossy();
        if KEYS.contains(&key.as_ref()) {
            let value = percent_decode_str(raw_value)
                .decode_utf8_lossy()
                .into_owned();
            params.set(&key, value);
        } else {
            kept.push(pair);
        }
    }
    let stripped = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (stripped, params)
}

/// libpq's `key = value` form: values may be single-quoted, `\` escapes the next character.
fn split_key_value(text: &str) -> (String, TlsParams) {
    let mut params = TlsParams::default();
    let mut stripped = String::with_capacity(text.len());
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != '=' && !bytes[i].is_whitespace() {
            i += 1;
        }
        let key: String = bytes[key_start..i].iter().collect();
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == '=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_whitespace() {
                i += 1;
            }
            let quoted = i < bytes.len() && bytes[i] == '\'';
            if quoted {
                i += 1;
            }
            while i < bytes.len() {
                let c = bytes[i];
                if c == '\\' && i + 1 < bytes.len() {
                    value.push(bytes[i + 1]);
                    i += 2;
                    continue;
                }
                if (quoted && c == '\'') || (!quoted && c.is_whitespace()) {
                    break;
                }
                value.push(c);
                i += 1;
            }
            if quoted && i < bytes.len() {
                i += 1;
            }
        }
        if KEYS.contains(&key.as_str()) {
            params.set(&key, value);
        } else {
            stripped.extend(&bytes[start..i]);
        }
        if i == start {
            i += 1;
        }
    }
    (stripped.trim().to_owned(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keys_are_cut_out_and_decoded() {
        let (rest, p) = split(
            "postgres://u:pw@h:5/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20x.crt",
        );
        assert_eq!(rest, "postgres://u:pw@h:5/db?application_name=x");
        assert_eq!(p.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(p.sslrootcert.as_deref(), Some("/tmp/ca x.crt"));
        let (rest, p) = split("postgresql://h/db?sslcert=/c&sslkey=/k");
        assert_eq!(rest, "postgresql://h/db");
        assert_eq!(
            (p.sslcert.as_deref(), p.sslkey.as_deref()),
            (Some("/c"), Some("/k"))
        );
        assert_eq!(p.query(), "?sslcert=/c&sslkey=/k");
    }

    #[test]
    fn key_value_keys_are_cut_out_with_quotes_and_escapes() {
        let (rest, p) = split(
            "host=h password='a b\\'c' sslmode = verify-ca sslrootcert='/x y/ca.crt' dbname=d",
        );
        assert_eq!(rest, "host=h password='a b\\'c' dbname=d");
        assert_eq!(p.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(p.sslrootcert.as_deref(), Some("/x y/ca.crt"));
    }
}
