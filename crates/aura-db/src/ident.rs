//! Role and schema names: validated before they reach SQL, and always double-quoted there.

use crate::error::Error;

/// Checks a role or schema name against `^[a-z_][a-z0-9_]{0,62}$`, refusing the reserved
/// `pg_` prefix. `what` names the variable or field for the error.
pub fn validate_ident(what: &str, name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = matches!(chars.next(), Some('a'..='z' | '_'));
    let rest_ok = chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'));
    if !first_ok || !rest_ok || name.len() > 63 {
        return Err(Error::config(
            what,
            format!(
                "must match ^[a-z_][a-z0-9_]{{0,62}}$ (lower-case letters, digits, underscore; \
                 at most 63 bytes), got {name:?}"
            ),
        ));
    }
    if name.starts_with("pg_") {
        return Err(Error::config(
            what,
            format!("must not start with pg_ (reserved by Postgres), got {name:?}"),
        ));
    }
    Ok(())
}

/// `"name"`, for a name that passed [`validate_ident`].
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_rejects_the_rest() {
        for ok in ["aura_app", "_x", "a", &"a".repeat(63)] {
            assert!(validate_ident("N", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Aura",
            "9a",
            "a-b",
            "a b",
            "pg_app",
            "a\"b",
            &"a".repeat(64),
        ] {
            let err = validate_ident("N", bad).unwrap_err().to_string();
            assert!(err.starts_with("aura-db: N must"), "{err}");
        }
        assert_eq!(quote_ident("aura"), "\"aura\"");
    }
}
