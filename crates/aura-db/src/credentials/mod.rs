//! Credentials per connection: a [`CredentialSource`] is asked for the password of every
//! new physical connection (pool connections, the migration session, role bootstrap), so a
//! short-lived token (a cloud IAM token) or a secret rotated on disk is fresh each time a
//! connection is made. Open sessions are not touched: Postgres checks a password only at
//! login.
//!
//! The trait is object safe through `#[async_trait]` (the convention of aura-store's
//! repository traits; re-exported as `aura_db::async_trait`): implementors write a plain
//! `async fn`, and the pool holds any source behind one `Arc<dyn CredentialSource>`
//! ([`Credentials`]). A closure will do too:
//! [`Credentials::from_fn`]. The file source of `AURA_DB_PASSWORD_FILE` /
//! `POSTGRES_PASSWORD_FILE` is [`PasswordFile`].

mod file;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

pub use file::{PasswordFile, PasswordFileError};

/// The error a [`CredentialSource`] may fail with: any error of its own. It reaches the
/// caller as the `#[source]` of [`crate::Error::Credentials`].
pub type CredentialError = Box<dyn std::error::Error + Send + Sync>;

/// Where the password of each new connection comes from.
///
/// Asked once per physical connection, just before it is made (never for a connection the
/// pool hands out again). The time it takes counts against the connect timeout. A failure
/// is returned to the caller as [`crate::Error::Credentials`] with the source's error as
/// its cause. aura-db never prints a source's `Debug` (a derived one would show a cached
/// secret): errors and the configuration's `Debug` show the [`Credentials`] label.
///
/// ```
/// use aura_db::{CredentialError, CredentialSource, async_trait};
/// use secrecy::SecretString;
///
/// struct FromVault;
///
/// #[async_trait]
/// impl CredentialSource for FromVault {
///     async fn password(&self) -> Result<SecretString, CredentialError> {
///         Ok(SecretString::from("fetched just now".to_owned()))
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait CredentialSource: Send + Sync {
    /// The password to log in with now.
    async fn password(&self) -> Result<SecretString, CredentialError>;
}

/// A shared handle to a [`CredentialSource`] with a label for `Debug` (the source's type
/// name, or the label given): cheap to clone, compared by identity.
#[derive(Clone)]
pub struct Credentials {
    source: Arc<dyn CredentialSource>,
    label: Arc<str>,
}

impl Credentials {
    /// Wraps a source; `Debug` shows its type name.
    pub fn new<S: CredentialSource + 'static>(source: S) -> Self {
        let name = std::any::type_name::<S>();
        let short = name.split('<').next().unwrap_or(name);
        let short = short.rsplit("::").next().unwrap_or(short);
        Self::labelled(Arc::new(source), short)
    }

    /// Wraps a source already shared elsewhere; `label` is what `Debug` shows.
    pub fn labelled(source: Arc<dyn CredentialSource>, label: &str) -> Self {
        Credentials {
            source,
            label: Arc::from(label),
        }
    }

    /// A source from an async closure; `label` is what `Debug` shows (`from_fn("rds-iam")`).
    pub fn from_fn<F, Fut>(label: &str, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SecretString, CredentialError>> + Send + 'static,
    {
        Self::labelled(Arc::new(FnSource(f)), label)
    }

    /// The password file `file`, labelled with its setting and path.
    pub(crate) fn file(file: PasswordFile) -> Self {
        let label = format!("{file:?}");
        Self::labelled(Arc::new(file), &label)
    }

    /// Asks the source for a password.
    ///
    /// # Errors
    /// The source's own error.
    pub async fn password(&self) -> Result<SecretString, CredentialError> {
        self.source.password().await
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Credentials").field(&self.label).finish()
    }
}

impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.source, &other.source)
    }
}

impl Eq for Credentials {}

/// [`Credentials::from_fn`]'s source.
struct FnSource<F>(F);

#[async_trait::async_trait]
impl<F, Fut> CredentialSource for FnSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SecretString, CredentialError>> + Send + 'static,
{
    async fn password(&self) -> Result<SecretString, CredentialError> {
        (self.0)().await
    }
}

/// A source that gave no password within the connect timeout.
#[derive(Debug, Clone, thiserror::Error)]
#[error("gave no password within {}", crate::error::fmt_duration(*.0))]
pub(crate) struct SourceTimedOut(pub(crate) Duration);
