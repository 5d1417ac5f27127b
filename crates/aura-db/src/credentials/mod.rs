//! Credentials per connection: a [`CredentialSource`] is asked for the password of every
//! new physical connection (pool connections, the migration session, role bootstrap), so a
//! short-lived token (a cloud IAM token) or a secret rotated on disk is fresh each time a
//! connection is made. Open sessions are not touched: Postgres checks a password only at
//! login.
//!
//! The trait is object safe through `#[async_trait]` (the convention of aura-store's
//! repository traits): implementors write a plain `async fn`, and the pool holds any
//! source behind one `Arc<dyn CredentialSource>` ([`Credentials`]). A closure will do too:
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
/// its cause. `Debug` must not show the secret (the error and the configuration's `Debug`
/// print it).
///
/// ```
/// use aura_db::{CredentialError, CredentialSource, async_trait};
/// use secrecy::SecretString;
///
/// #[derive(Debug)]
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
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The password to log in with now.
    async fn password(&self) -> Result<SecretString, CredentialError>;
}

/// A shared handle to a [`CredentialSource`]: cheap to clone, compared by identity.
#[derive(Clone)]
pub struct Credentials(Arc<dyn CredentialSource>);

impl Credentials {
    /// Wraps a source.
    pub fn new(source: impl CredentialSource + 'static) -> Self {
        Credentials(Arc::new(source))
    }

    /// Wraps a source already shared elsewhere.
    pub fn from_arc(source: Arc<dyn CredentialSource>) -> Self {
        Credentials(source)
    }

    /// A source from an async closure; `label` is what `Debug` shows (`from_fn("rds-iam")`).
    pub fn from_fn<F, Fut>(label: &'static str, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<SecretString, CredentialError>> + Send + 'static,
    {
        Credentials::new(FnSource { label, f })
    }

    /// Asks the source for a password.
    ///
    /// # Errors
    /// The source's own error.
    pub async fn password(&self) -> Result<SecretString, CredentialError> {
        self.0.password().await
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Credentials {}

/// [`Credentials::from_fn`]'s source.
struct FnSource<F> {
    label: &'static str,
    f: F,
}

impl<F> fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from_fn({:?})", self.label)
    }
}

#[async_trait::async_trait]
impl<F, Fut> CredentialSource for FnSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SecretString, CredentialError>> + Send + 'static,
{
    async fn password(&self) -> Result<SecretString, CredentialError> {
        (self.f)().await
    }
}

/// A source that gave no password within the connect timeout.
#[derive(Debug, Clone, thiserror::Error)]
#[error("gave no password within {}", crate::error::fmt_duration(*.0))]
pub(crate) struct SourceTimedOut(pub(crate) Duration);
