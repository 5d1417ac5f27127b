//! [`Relaxed`]: the server-certificate checks of the modes rustls has no switch for.
//! With a chain verifier (`verify-ca`, and `prefer`/`require` with a root certificate) the
//! chain must lead to a trusted root and be valid now, and the host name is not compared;
//! without one (`prefer`/`require` without a root certificate, as libpq) any certificate is
//! accepted. The handshake signatures are always checked, so the session is encrypted to
//! whoever holds the presented certificate's key. `verify-full` uses rustls' own
//! `WebPkiServerVerifier` unchanged.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

/// The chain verified, the host name not (libpq's `verify-ca`); with no chain verifier,
/// any certificate (libpq's `prefer` and `require` without a root certificate).
#[derive(Debug)]
pub(crate) struct Relaxed {
    /// Checks the chain; `None`: any certificate is accepted.
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Checks the handshake signatures (the provider `chain` was built with, if any).
    provider: Arc<CryptoProvider>,
}

impl Relaxed {
    pub(crate) fn new(
        chain: Option<Arc<WebPkiServerVerifier>>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Relaxed { chain, provider }
    }
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain (trust, validity period, revocation) before the name, so
        // a name error means everything else passed.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
