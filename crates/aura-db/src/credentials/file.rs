//! [`PasswordFile`]: a password read from a file on every new connection, as mounted
//! secrets (Kubernetes, Docker) and the official Postgres image's `*_FILE` variables have it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;

use super::{CredentialError, CredentialSource};

/// A password kept in a file, re-read for every new connection so a rotated secret is
/// picked up without a restart. Trailing line breaks (`\n`, `\r\n`) are not part of the
/// password; other whitespace is.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordFile {
    setting: String,
    path: PathBuf,
}

impl PasswordFile {
    /// The file at `path`; `setting` names where the path came from in errors
    /// (`AURA_DB_PASSWORD_FILE`, a builder field).
    pub fn new(setting: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        PasswordFile {
            setting: setting.into(),
            path: path.into(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The setting that named the file.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// Reads the password now (blocking: a small file).
    ///
    /// # Errors
    /// [`PasswordFileError`] naming the setting and the path: unreadable, missing, not
    /// UTF-8, or empty.
    pub fn read_now(&self) -> Result<SecretString, PasswordFileError> {
        let fail = |problem| PasswordFileError {
            setting: self.setting.clone(),
            path: self.path.clone(),
            problem,
        };
        let bytes = std::fs::read(&self.path).map_err(|e| fail(Problem::Io(Arc::new(e))))?;
        let text = String::from_utf8(bytes).map_err(|_| fail(Problem::NotUtf8))?;
        let password = text.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(fail(Problem::Empty));
        }
        Ok(SecretString::from(password.to_owned()))
    }
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PasswordFile({} = {})",
            self.setting,
            self.path.display()
        )
    }
}

#[async_trait::async_trait]
impl CredentialSource for PasswordFile {
    async fn password(&self) -> Result<SecretString, CredentialError> {
        let file = self.clone();
        match tokio::task::spawn_blocking(move || file.read_now()).await {
            Ok(read) => read.map_err(Into::into),
            Err(e) => Err(Box::new(e)),
        }
    }
}

/// A password file that could not give a password. Names the setting and the path, never
/// the content.
#[derive(Debug, Clone)]
pub struct PasswordFileError {
    setting: String,
    path: PathBuf,
    problem: Problem,
}

#[derive(Debug, Clone)]
enum Problem {
    Io(Arc<io::Error>),
    NotUtf8,
    Empty,
}

impl PasswordFileError {
    /// The setting that named the file.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// What is wrong, after the setting's name: `(/run/secrets/pw) is empty`.
    pub fn reason(&self) -> String {
        let path = self.path.display();
        match &self.problem {
            Problem::Io(e) => format!("({path}) cannot be read: {e}"),
            Problem::NotUtf8 => format!("({path}) is not UTF-8 text"),
            Problem::Empty => format!("({path}) is empty"),
        }
    }
}

impl fmt::Display for PasswordFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.setting, self.reason())
    }
}

impl std::error::Error for PasswordFileError {}

impl From<PasswordFileError> for crate::Error {
    fn from(e: PasswordFileError) -> Self {
        crate::Error::config(e.setting.clone(), e.reason())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn temp_file(name: &str, content: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("aura-pwfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn trailing_line_breaks_are_trimmed_other_spaces_kept() {
        for (content, expected) in [
            (&b"s3cret\n"[..], "s3cret"),
            (b"s3cret\r\n", "s3cret"),
            (b"s3cret\n\n", "s3cret"),
            (b" s3 cret ", " s3 cret "),
        ] {
            let file = PasswordFile::new("X_FILE", temp_file("trim", content));
            assert_eq!(file.read_now().unwrap().expose_secret(), expected);
        }
    }

    #[test]
    fn missing_empty_and_binary_files_name_setting_and_path() {
        let empty = temp_file("empty", b"\n");
        let binary = temp_file("binary", &[0xff, 0xfe]);
        let missing = empty.with_file_name("no-such-file");
        for (path, words) in [
            (&empty, "is empty"),
            (&binary, "not UTF-8"),
            (&missing, "cannot be read"),
        ] {
            let err = PasswordFile::new("AURA_DB_PASSWORD_FILE", path)
                .read_now()
                .unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("AURA_DB_PASSWORD_FILE (")
                    && text.contains(&path.display().to_string())
                    && text.contains(words),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn a_rewritten_file_is_read_again() {
        let path = temp_file("rotate", b"first\n");
        let file = PasswordFile::new("X_FILE", &path);
        assert_eq!(file.password().await.unwrap().expose_secret(), "first");
        std::fs::write(&path, b"second\n").unwrap();
        assert_eq!(file.password().await.unwrap().expose_secret(), "second");
    }
}
