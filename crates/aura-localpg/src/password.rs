//! The superuser password: generated once, kept in a 0600 file, never printed or logged.

use std::path::Path;

use rand::Rng;
use rand::distr::Alphanumeric;
use secrecy::{ExposeSecret, SecretString};

use crate::{Error, fsutil};

/// Length of a generated password: 32 alphanumeric characters (~190 bits), safe in a URL
/// without escaping.
const LENGTH: usize = 32;

/// A fresh random password.
pub(crate) fn generate() -> SecretString {
    let password: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(LENGTH)
        .map(char::from)
        .collect();
    SecretString::from(password)
}

/// Writes `password` to `path`, mode 0600 from the moment the file exists.
pub(crate) fn write(path: &Path, password: &SecretString) -> Result<(), Error> {
    fsutil::write_atomic(path, password.expose_secret().as_bytes(), 0o600)
}

/// Reads the password kept at `path`; `None` when the file does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<SecretString>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let password = text.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    detail: "empty password".to_owned(),
                });
            }
            Ok(Some(SecretString::from(password.to_owned())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_distinct() {
        let a = generate();
        let b = generate();
        assert_eq!(a.expose_secret().len(), LENGTH);
        assert!(a.expose_secret().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!format!("{a:?}").contains(a.expose_secret()));
    }
}
