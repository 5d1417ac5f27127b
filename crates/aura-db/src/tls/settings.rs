//! Resolving the TLS settings of one connection as libpq does: the connection string first,
//! then `PGSSLMODE` / `PGSSLROOTCERT` / `PGSSLCERT` / `PGSSLKEY`, then the defaults
//! (`prefer`; `~/.postgresql/root.crt`, `postgresql.crt`, `postgresql.key` when they exist).

use std::path::{Path, PathBuf};

use super::mode::SslMode;
use super::params::TlsParams;
use crate::error::Error;

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the platform's trust store (read with `rustls-native-certs`).
    System,
}

/// The resolved TLS settings of one connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The effective `sslmode`.
    pub mode: SslMode,
    /// The trusted roots, when any were given or the default file exists.
    pub rootcert: Option<RootCert>,
    /// The client certificate and its key, when given (both or neither).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// One setting's value and the name to blame it on (`sslmode in AURA_DB_URL`, `PGSSLMODE`).
struct Found {
    value: String,
    name: String,
}

impl TlsSettings {
    /// Resolves `params` (from the connection string named `source`) against the process
    /// environment. Checks the values and that named files exist; reads no file.
    pub(crate) fn resolve(params: &TlsParams, source: &str) -> Result<Self, Error> {
        Self::resolve_with(params, source, &|name| std::env::var(name).ok())
    }

    pub(crate) fn resolve_with(
        params: &TlsParams,
        source: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let pick = |from_url: &Option<String>, key: &str, var: &str| -> Option<Found> {
            match from_url {
                Some(v) => Some(Found {
                    value: v.clone(),
                    name: format!("{key} in {source}"),
                }),
                None => env(var).filter(|v| !v.is_empty()).map(|value| Found {
                    value,
                    name: var.to_owned(),
                }),
            }
        };
        let mode_found = pick(&params.sslmode, "sslmode", "PGSSLMODE");
        let explicit_mode = match &mode_found {
            Some(f) => Some(SslMode::parse(&f.value).map_err(|r| Error::config(&f.name, r))?),
            None => None,
        };
        let home = env("HOME").map(|h| Path::new(&h).join(".postgresql"));

        let root_found = pick(&params.sslrootcert, "sslrootcert", "PGSSLROOTCERT");
        let (rootcert, mode) = match root_found {
            Some(f) if f.value == "system" => {
                // libpq 16: system roots imply verify-full, and forbid anything weaker.
                match explicit_mode {
                    None | Some(SslMode::VerifyFull) => {}
                    Some(weak) => {
                        return Err(Error::config(
                            mode_found.map_or("sslmode".to_owned(), |f| f.name),
                            format!(
                                "\"{weak}\" may not be used with sslrootcert=system \
                                 (use verify-full)"
                            ),
                        ));
                    }
                }
                (Some(RootCert::System), SslMode::VerifyFull)
            }
            Some(f) => {
                let path = PathBuf::from(&f.value);
                check_file(&f.name, &path)?;
                (
                    Some(RootCert::File(path)),
                    explicit_mode.unwrap_or_default(),
                )
            }
            None => {
                let mode = explicit_mode.unwrap_or_default();
                let default = home.as_ref().map(|h| h.join("root.crt"));
                match default {
                    Some(path) if path.is_file() => (Some(RootCert::File(path)), mode),
                    _ if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) => {
                        return Err(Error::config(
                            "sslrootcert",
                            format!(
                                "is needed for sslmode={mode}: no root certificate file was \
                                 given and {} does not exist (set sslrootcert=<file> or \
                                 PGSSLROOTCERT, use sslrootcert=system for the platform's \
                                 roots, or choose a weaker sslmode)",
                                default.map_or("~/.postgresql/root.crt".to_owned(), |p| p
                                    .display()
                                    .to_string())
                            ),
                        ));
                    }
                    _ => (None, mode),
                }
            }
        };

        let cert = pick(&params.sslcert, "sslcert", "PGSSLCERT");
        let key = pick(&params.sslkey, "sslkey", "PGSSLKEY");
        let client_cert = match (cert, key) {
            (Some(c), Some(k)) => {
                check_file(&c.name, Path::new(&c.value))?;
                check_file(&k.name, Path::new(&k.value))?;
                Some((PathBuf::from(c.value), PathBuf::from(k.value)))
            }
            (Some(c), None) => {
                return Err(Error::config(
                    c.name,
                    "is set but sslkey is not: a client certificate needs its private key \
                     (set sslkey or PGSSLKEY)",
                ));
            }
            (None, Some(k)) => {
                return Err(Error::config(
                    k.name,
                    "is set but sslcert is not: a client key needs its certificate \
                     (set sslcert or PGSSLCERT)",
                ));
            }
            (None, None) => home.and_then(|h| {
                let (c, k) = (h.join("postgresql.crt"), h.join("postgresql.key"));
                (c.is_file() && k.is_file()).then_some((c, k))
            }),
        };
        // With sslmode=disable no file is used (but a bad one was still refused above).
        let enabled = mode != SslMode::Disable;
        Ok(TlsSettings {
            mode,
            rootcert: rootcert.filter(|_| enabled),
            client_cert: client_cert.filter(|_| enabled),
        })
    }

    /// True when the server's certificate chain is verified: verify-ca and verify-full,
    /// and prefer/require once a root certificate is there (libpq's rule).
    pub fn verifies_chain(&self) -> bool {
        self.mode != SslMode::Disable && self.rootcert.is_some()
    }
}

fn check_file(name: &str, path: &Path) -> Result<(), Error> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(Error::config(
            name,
            format!("names {} which is not a file", path.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::config(
            name,
            format!("names {} which does not exist", path.display()),
        )),
        Err(e) => Err(Error::config_from(
            name,
            format!("names {} which cannot be read: {e}", path.display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(params: TlsParams, env: &[(&str, &str)]) -> Result<TlsSettings, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TlsSettings::resolve_with(&params, "AURA_DB_URL", &|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .map_err(|e| e.to_string())
    }

    fn url(mode: Option<&str>, root: Option<&str>) -> TlsParams {
        TlsParams {
            sslmode: mode.map(str::to_owned),
            sslrootcert: root.map(str::to_owned),
            ..TlsParams::default()
        }
    }

    #[test]
    fn defaults_to_prefer_without_verification() {
        let s = resolve(TlsParams::default(), &[("HOME", "/nonexistent")]).unwrap();
        assert_eq!(s.mode, SslMode::Prefer);
        assert!(!s.verifies_chain());
    }

    #[test]
    fn the_url_wins_over_the_environment() {
        let s = resolve(
            url(Some("disable"), None),
            &[("PGSSLMODE", "require"), ("HOME", "/nonexistent")],
        )
        .unwrap();
        assert_eq!(s.mode, SslMode::Disable);
        let s = resolve(
            TlsParams::default(),
            &[("PGSSLMODE", "require"), ("HOME", "/nonexistent")],
        )
        .unwrap();
        assert_eq!(s.mode, SslMode::Require);
    }

    #[test]
    fn bad_input_names_the_setting() {
        let e = resolve(url(Some("verify_full"), None), &[]).unwrap_err();
        assert!(
            e.contains("sslmode in AURA_DB_URL") && e.contains("verify_full"),
            "{e}"
        );
        let e = resolve(TlsParams::default(), &[("PGSSLMODE", "on")]).unwrap_err();
        assert!(e.contains("PGSSLMODE"), "{e}");
        let e = resolve(url(None, Some("/nonexistent/ca.crt")), &[]).unwrap_err();
        assert!(
            e.contains("sslrootcert in AURA_DB_URL") && e.contains("does not exist"),
            "{e}"
        );
        let e = resolve(url(Some("verify-full"), None), &[("HOME", "/nonexistent")]).unwrap_err();
        assert!(e.contains("sslrootcert") && e.contains("root.crt"), "{e}");
        let e = resolve(
            TlsParams {
                sslkey: Some("/etc/hostname".into()),
                ..TlsParams::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(
            e.contains("sslkey in AURA_DB_URL") && e.contains("sslcert"),
            "{e}"
        );
        let e = resolve(TlsParams::default(), &[("PGSSLCERT", "/etc/hostname")]).unwrap_err();
        assert!(e.contains("PGSSLCERT") && e.contains("sslkey"), "{e}");
        let e = resolve(url(Some("require"), Some("system")), &[]).unwrap_err();
        assert!(e.contains("sslrootcert=system"), "{e}");
    }

    #[test]
    fn a_root_certificate_makes_require_verify_the_chain() {
        let s = resolve(url(Some("require"), Some("/etc/hostname")), &[]).unwrap();
        assert_eq!(s.mode, SslMode::Require);
        assert!(s.verifies_chain());
        let s = resolve(url(None, Some("system")), &[]).unwrap();
        assert_eq!(s.mode, SslMode::VerifyFull);
    }
}
