//! Building the rustls client configuration of one [`TlsSettings`]: crypto provider
//! (`ring`, chosen explicitly, never the process default), roots, verifier, client
//! certificate. Files are read here, once per connection spec (a pool reads them once).

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::mode::SslMode;
use super::settings::{RootCert, TlsSettings};
use super::verifier::Relaxed;
use crate::error::Error;

/// What a connection hands tokio-postgres: the mode it is told, and the rustls connector.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    pub(crate) mode: SslMode,
    /// `sslrootcert` as given (`system` or a path), for error messages.
    pub(crate) rootcert: Option<String>,
    make: MakeRustlsConnect,
}

impl TlsConnector {
    /// Reads the files `settings` name and builds the rustls configuration.
    pub(crate) fn build(settings: &TlsSettings) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match &settings.rootcert {
            Some(root) if settings.mode != SslMode::Disable => {
                let roots = Arc::new(load_roots(root)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| {
                        Error::config_from("sslrootcert", format!("is unusable: {e}"), e)
                    })?;
                if settings.mode == SslMode::VerifyFull {
                    webpki
                } else {
                    Arc::new(Relaxed::new(Some(webpki), provider.clone()))
                }
            }
            _ => Arc::new(Relaxed::new(None, provider.clone())),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config_from("TLS", format!("no usable protocol version: {e}"), e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &settings.client_cert {
            Some((cert, key)) => {
                let chain = load_certs("sslcert", cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    Error::config_from(
                        "sslkey",
                        format!("{}: no usable private key: {e}", key.display()),
                        e,
                    )
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::config_from(
                        "sslcert",
                        format!("and sslkey do not make a usable client certificate: {e}"),
                        e,
                    )
                })?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(TlsConnector {
            mode: settings.mode,
            rootcert: settings.rootcert.as_ref().map(|r| match r {
                RootCert::System => "system".to_owned(),
                RootCert::File(p) => p.display().to_string(),
            }),
            make: MakeRustlsConnect::new(config),
        })
    }

    /// The connector tokio-postgres drives (cheap to clone: the configuration is shared).
    pub(crate) fn make(&self) -> MakeRustlsConnect {
        self.make.clone()
    }
}

fn load_roots(root: &RootCert) -> Result<RootCertStore, Error> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            for cert in load_certs("sslrootcert", path)? {
                store.add(cert).map_err(|e| {
                    Error::config_from(
                        "sslrootcert",
                        format!(
                            "{}: a certificate is unusable as a root: {e}",
                            path.display()
                        ),
                        e,
                    )
                })?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(Error::config(
                    "sslrootcert",
                    format!(
                        "is \"system\" but no trusted root certificate was found on this \
                         system{}",
                        if why.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", why.join("; "))
                        }
                    ),
                ));
            }
        }
    }
    Ok(store)
}

fn load_certs(setting: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::config_from(
                setting,
                format!("{}: cannot be read: {e}", path.display()),
                e,
            )
        })?;
    if certs.is_empty() {
        return Err(Error::config(
            setting,
            format!("{}: holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}
