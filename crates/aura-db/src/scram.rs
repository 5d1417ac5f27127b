//! Whether a stored SCRAM-SHA-256 verifier (`pg_authid.rolpassword`) is the verifier of a
//! password, so role bootstrap keeps it instead of writing a new one with a new salt.
//!
//! A new salt changes the stored and server keys though the password did not change; a
//! PgBouncer whose `auth_file` holds the old verifier (SCRAM pass-through) then fails to
//! log in to the server until its file is refreshed. Recomputed as Postgres and
//! postgres-protocol compute it (RFC 5802 / 7677): SASLprep of the password (the raw bytes
//! where SASLprep refuses it), PBKDF2-HMAC-SHA-256 with the stored salt and iteration
//! count, then `StoredKey = SHA-256(HMAC(salted, "Client Key"))` and
//! `ServerKey = HMAC(salted, "Server Key")`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Iteration counts above this are not recomputed (a verifier made elsewhere with an
/// unusual cost): bootstrap then writes its own.
const MAX_ITERATIONS: u32 = 1_000_000;

/// True when `v` has the shape of a SCRAM-SHA-256 verifier (Postgres stores any other
/// string given as a password as a plaintext password, so bootstrap checks its own).
pub(crate) fn is_verifier(v: &str) -> bool {
    Stored::parse(v).is_some()
}

/// True when `stored` is a SCRAM-SHA-256 verifier of `password`.
pub(crate) fn verifies(stored: &str, password: &SecretString) -> bool {
    let Some(stored) = Stored::parse(stored) else {
        return false;
    };
    let raw = password.expose_secret();
    let normalized = match stringprep::saslprep(raw) {
        Ok(prepared) => prepared.into_owned(),
        Err(_) => raw.to_owned(),
    };
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        normalized.as_bytes(),
        &stored.salt,
        stored.iterations,
        &mut salted,
    );
    let client_key = hmac(&salted, b"Client Key");
    Sha256::digest(client_key).as_slice() == stored.stored_key.as_slice()
        && hmac(&salted, b"Server Key").as_slice() == stored.server_key.as_slice()
}

/// A stored verifier, decoded.
struct Stored {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl Stored {
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 parts).
    fn parse(stored: &str) -> Option<Stored> {
        let rest = stored.strip_prefix("SCRAM-SHA-256$")?;
        let (iter_salt, keys) = rest.split_once('$')?;
        let (iterations, salt) = iter_salt.split_once(':')?;
        let (stored_key, server_key) = keys.split_once(':')?;
        let iterations: u32 = iterations.parse().ok()?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return None;
        }
        Some(Stored {
            iterations,
            salt: STANDARD.decode(salt).ok()?,
            stored_key: STANDARD.decode(stored_key).ok()?,
            server_key: STANDARD.decode(server_key).ok()?,
        })
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn a_verifier_made_by_postgres_protocol_verifies_its_password_only() {
        for password in ["s3cret", "päss wörd ☃", "a b\u{00A0}c"] {
            let stored = postgres_protocol::password::scram_sha_256(password.as_bytes());
            assert!(verifies(&stored, &secret(password)), "{password}");
            assert!(!verifies(&stored, &secret("other")), "{password}");
        }
    }

    #[test]
    fn anything_else_does_not_verify() {
        let password = secret("s3cret");
        for stored in [
            "",
            "md5f1c2b9f2b5d5b4d8c6a4bd0c5e3c2a11",
            "SCRAM-SHA-256$0:c2FsdA==$YQ==:Yg==",
            "SCRAM-SHA-256$4096:not base64$YQ==:Yg==",
            "SCRAM-SHA-256$4096:c2FsdA==$YQ==:Yg==",
        ] {
            assert!(!verifies(stored, &password), "{stored}");
        }
    }
}
