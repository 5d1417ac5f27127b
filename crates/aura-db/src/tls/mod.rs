//! TLS on every connection, with libpq's `sslmode` semantics, through rustls (no OpenSSL).
//!
//! - [`params`]: the TLS keys cut out of a connection string (tokio-postgres rejects some);
//! - [`settings`]: resolved against `PGSSL*` and libpq's defaults;
//! - [`connector`]: the rustls configuration they describe (`ring` provider);
//! - [`verifier`]: the `verify-ca` and unverified certificate checks;
//! - [`failure`]: handshake errors in words.

mod connector;
mod failure;
mod mode;
pub(crate) mod params;
mod settings;
mod verifier;

pub(crate) use connector::TlsConnector;
pub use failure::TlsFailure;
pub(crate) use failure::classify;
pub use mode::SslMode;
pub use settings::{RootCert, TlsSettings};
