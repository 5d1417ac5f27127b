//! What went wrong in a TLS handshake, told in words an operator can act on.

use std::fmt;

use rustls::CertificateError;

use super::mode::SslMode;

/// Why a TLS session could not be set up. Shown inside [`crate::Error::Tls`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate does not lead to a trusted root.
    UnknownCa {
        /// `sslrootcert` as configured (a path or `system`).
        rootcert: Option<String>,
    },
    /// The certificate is valid but not for the host connected to (`verify-full`).
    HostMismatch {
        /// The host name (or address) connected to.
        host: String,
        /// The names the certificate is valid for.
        presented: Vec<String>,
    },
    /// The certificate's validity period has ended.
    Expired {
        /// Its `notAfter`, as `YYYY-MM-DD HH:MM:SS UTC`, when known.
        not_after: Option<String>,
    },
    /// The certificate's validity period has not begun.
    NotYetValid,
    /// The server answered the TLS request with "no", and the mode requires TLS.
    NotSupported {
        /// The mode in force.
        mode: SslMode,
    },
    /// Any other handshake failure (the server refused the client certificate, no common
    /// protocol version, a bad certificate encoding, …).
    Handshake {
        /// rustls' description.
        message: String,
    },
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownCa { rootcert } => write!(
                f,
                "the server's certificate is signed by an unknown certificate authority \
                 (not trusted by sslrootcert={})",
                rootcert.as_deref().unwrap_or("<none>")
            ),
            Self::HostMismatch { host, presented } => write!(
                f,
                "host name mismatch: the server's certificate is not valid for {host:?} \
                 (it is valid for: {})",
                if presented.is_empty() {
                    "no name".to_owned()
                } else {
                    presented.join(", ")
                }
            ),
            Self::Expired { not_after } => match not_after {
                Some(t) => write!(f, "the server's certificate expired on {t}"),
                None => f.write_str("the server's certificate has expired"),
            },
            Self::NotYetValid => f.write_str("the server's certificate is not valid yet"),
            Self::NotSupported { mode } => write!(
                f,
                "the server does not support TLS, and sslmode={mode} requires it"
            ),
            Self::Handshake { message } => write!(f, "TLS handshake failed: {message}"),
        }
    }
}

/// The TLS failure inside a connect error, if it is one.
pub(crate) fn classify(
    err: &tokio_postgres::Error,
    mode: SslMode,
    rootcert: Option<&str>,
) -> Option<TlsFailure> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut tls_kind = false;
    while let Some(e) = source {
        if let Some(rustls_err) = as_rustls(e) {
            return Some(from_rustls(rustls_err, rootcert));
        }
        if e.to_string() == "server does not support TLS" {
            return Some(TlsFailure::NotSupported { mode });
        }
        tls_kind |= e.to_string() == "error performing TLS handshake";
        source = e.source();
    }
    tls_kind.then(|| TlsFailure::Handshake {
        message: crate::error::error_chain(err),
    })
}

fn as_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>().or_else(|| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

fn from_rustls(err: &rustls::Error, rootcert: Option<&str>) -> TlsFailure {
    let rustls::Error::InvalidCertificate(cert) = err else {
        return TlsFailure::Handshake {
            message: err.to_string(),
        };
    };
    match cert {
        CertificateError::UnknownIssuer => TlsFailure::UnknownCa {
            rootcert: rootcert.map(str::to_owned),
        },
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => TlsFailure::HostMismatch {
            host: expected.to_str().into_owned(),
            presented: presented.iter().map(|n| bare_name(n)).collect(),
        },
        CertificateError::NotValidForName => TlsFailure::HostMismatch {
            host: String::new(),
            presented: Vec::new(),
        },
        CertificateError::ExpiredContext { not_after, .. } => TlsFailure::Expired {
            not_after: Some(utc(not_after.as_secs())),
        },
        CertificateError::Expired => TlsFailure::Expired { not_after: None },
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            TlsFailure::NotYetValid
        }
        other => TlsFailure::Handshake {
            message: format!("invalid server certificate: {other:?}"),
        },
    }
}

/// `localhost` of rustls' `DnsName("localhost")`, `127.0.0.1` of `IpAddress(127.0.0.1)`.
fn bare_name(presented: &str) -> String {
    let inner = presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(presented);
    inner.trim_matches('"').to_owned()
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time: an expired certificate's `notAfter`, so
/// before now and within what humantime formats (up to the year 9999).
fn utc(secs: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    // `2026-12-31T23:59:59Z`
    let rfc3339 = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} {} UTC", &rfc3339[..10], &rfc3339[11..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_lose_their_wrappers() {
        assert_eq!(bare_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(bare_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(bare_name("plain"), "plain");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }
}
