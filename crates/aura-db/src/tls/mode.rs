//! `sslmode`: libpq's values and what each one asks of the connection.

use std::fmt;

/// libpq's `sslmode`, with libpq's meaning (see the README's TLS table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// Plaintext only; never asks the server for TLS.
    Disable,
    /// TLS when the server offers it, else plaintext. The certificate is not verified
    /// (unless a root certificate is given, then the chain is, as `verify-ca`).
    #[default]
    Prefer,
    /// TLS or nothing. The certificate is not verified, unless a root certificate is given:
    /// then this behaves as `verify-ca`, as in libpq.
    Require,
    /// TLS, and the server's certificate chain must lead to a trusted root; the host name
    /// is not checked.
    VerifyCa,
    /// TLS, a trusted chain, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's spelling. `allow` is libpq's too but not supported here (it tries
    /// plaintext first): the error says so.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            "allow" => Err("\"allow\" is not supported (use prefer, or disable)".to_owned()),
            other => Err(format!(
                "has an unknown value {other:?} (expected disable, prefer, require, \
                 verify-ca or verify-full)"
            )),
        }
    }

    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// True for the modes that refuse a plaintext session.
    pub fn requires_tls(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }

    /// What tokio-postgres is told: it knows only disable, prefer and require; the
    /// verification the stricter modes add is done by our certificate verifier.
    pub(crate) fn driver(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        match self {
            Self::Disable => Driver::Disable,
            Self::Prefer => Driver::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Driver::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libpq_values_and_names_bad_ones() {
        for mode in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(SslMode::parse(mode.as_str()), Ok(mode));
        }
        let err = SslMode::parse("verify_full").unwrap_err();
        assert!(
            err.contains("\"verify_full\"") && err.contains("verify-full"),
            "{err}"
        );
        assert!(
            SslMode::parse("allow")
                .unwrap_err()
                .contains("not supported")
        );
    }
}
