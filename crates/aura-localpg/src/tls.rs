//! TLS for the local cluster: a development CA and a server certificate generated with
//! rcgen (nothing is committed; everything is made on the machine), `ssl = on`, and
//! optionally TLS-only `pg_hba.conf` lines (`hostssl`).
//!
//! Files, all in the data directory (owned by the server user; keys mode 0600):
//! `aura-ca.crt` / `aura-ca.key` (the CA, kept across calls so clients that trust it keep
//! working), `server.crt` / `server.key` (regenerated when the options change), and
//! `aura-tls.conf`, included from `postgresql.conf`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::cluster::LocalCluster;
use crate::fsutil;
use crate::lock::ClusterLock;
use crate::{Error, HOST};

const CA_CERT: &str = "aura-ca.crt";
const CA_KEY: &str = "aura-ca.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const CONF: &str = "aura-tls.conf";
const INCLUDE: &str = "include_if_exists = 'aura-tls.conf'";
const CA_NAME: &str = "aura-localpg development CA";

/// How the local cluster serves TLS ([`LocalCluster::enable_tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct TlsOptions {
    tls_only: bool,
    server_names: Vec<String>,
    expired: bool,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            tls_only: false,
            server_names: vec!["localhost".to_owned(), HOST.to_owned()],
            expired: false,
        }
    }
}

impl TlsOptions {
    /// TLS offered beside plaintext, certificate for `localhost` and `127.0.0.1`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only `hostssl` lines in `pg_hba.conf`: plaintext logins are refused by the server.
    pub fn tls_only(mut self, only: bool) -> Self {
        self.tls_only = only;
        self
    }

    /// The names (DNS names or IP addresses) the server certificate is valid for.
    pub fn server_names(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.server_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// A server certificate that expired in 2021 (for tests of the client's checks).
    pub fn expired(mut self, expired: bool) -> Self {
        self.expired = expired;
        self
    }

    /// One line describing the options, kept in `aura-tls.conf` to detect a change.
    fn describe(&self) -> String {
        format!(
            "tls_only={} names={} expired={}",
            self.tls_only,
            self.server_names.join(","),
            self.expired
        )
    }
}

/// The certificate files of a cluster that serves TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    dir: PathBuf,
}

/// A client certificate and its key, issued by the cluster's CA.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The certificate (PEM), for `sslcert`.
    pub cert: PathBuf,
    /// Its private key (PEM, mode 0600), for `sslkey`.
    pub key: PathBuf,
}

impl TlsFiles {
    /// The CA certificate clients trust (`sslrootcert=<this>`).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    /// The server certificate.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join(SERVER_CERT)
    }

    /// Issues a client certificate for `user` (its common name), signed by the cluster's
    /// CA, into `dir` as `<user>.crt` / `<user>.key`.
    ///
    /// # Errors
    /// An unreadable CA key, rcgen or file-system errors.
    pub fn issue_client_cert(&self, user: &str, dir: &Path) -> Result<ClientCert, Error> {
        let ca_key = load_key(&self.dir.join(CA_KEY))?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let key = KeyPair::generate().map_err(|e| gen_err("client key", &e))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| gen_err("client certificate", &e))?;
        params.distinguished_name.push(DnType::CommonName, user);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| gen_err("client certificate", &e))?;
        let out = ClientCert {
            cert: dir.join(format!("{user}.crt")),
            key: dir.join(format!("{user}.key")),
        };
        fsutil::write_atomic(&out.cert, cert.pem().as_bytes(), 0o644)?;
        fsutil::write_atomic(&out.key, key.serialize_pem().as_bytes(), 0o600)?;
        Ok(out)
    }
}

impl LocalCluster {
    /// Makes the cluster serve TLS as `options` say, and returns its certificate files.
    ///
    /// Initializes and starts the cluster if needed; writes the certificates and
    /// `aura-tls.conf` (`ssl = on`) and sets the `pg_hba.conf` lines to `hostssl` (TLS-only)
    /// or `host`; restarts the server when anything changed. Calling it again with the same
    /// options changes nothing; the CA is generated once and kept.
    ///
    /// # Errors
    /// As [`LocalCluster::ensure_running`], rcgen and file-system errors.
    pub fn enable_tls(&self, options: &TlsOptions) -> Result<TlsFiles, Error> {
        self.ensure_running()?;
        // Under the lock from the first write to the end of the restart: another process
        // enabling the same options finds them in place and the server up.
        let _lock = ClusterLock::acquire(&self.lock_path())?;
        if self.write_tls(options)? {
            tracing::info!(root = %self.root().display(), options = %options.describe(),
                "restarting the local PostgreSQL cluster with TLS");
            self.restart_locked()?;
        }
        Ok(TlsFiles {
            dir: self.data_dir(),
        })
    }

    /// The certificate files, when [`enable_tls`](Self::enable_tls) made them.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        let dir = self.data_dir();
        dir.join(CONF).is_file().then_some(TlsFiles { dir })
    }

    /// Writes what `options` need; true when something changed.
    fn write_tls(&self, options: &TlsOptions) -> Result<bool, Error> {
        let data = self.data_dir();
        let conf_text = format!(
            "# written by aura-localpg: {}\nssl = on\nssl_cert_file = '{SERVER_CERT}'\n\
             ssl_key_file = '{SERVER_KEY}'\nssl_ca_file = '{CA_CERT}'\n",
            options.describe()
        );
        let conf = data.join(CONF);
        let files_there = [CA_CERT, CA_KEY, SERVER_CERT, SERVER_KEY]
            .iter()
            .all(|f| data.join(f).is_file());
        let mut changed = false;
        if !files_there || fs::read_to_string(&conf).ok().as_deref() != Some(&conf_text) {
            self.write_certificates(&data, options)?;
            self.write_owned(&conf, conf_text.as_bytes(), 0o600)?;
            changed = true;
        }
        changed |= self.include_conf(&data.join("postgresql.conf"))?;
        changed |= self.set_hba(&data.join("pg_hba.conf"), options.tls_only)?;
        Ok(changed)
    }

    fn write_certificates(&self, data: &Path, options: &TlsOptions) -> Result<(), Error> {
        let (ca_cert, ca_key) = (data.join(CA_CERT), data.join(CA_KEY));
        let ca_key = if ca_cert.is_file() && ca_key.is_file() {
            load_key(&ca_key)?
        } else {
            let key = KeyPair::generate().map_err(|e| gen_err("CA key", &e))?;
            let cert = ca_params()
                .self_signed(&key)
                .map_err(|e| gen_err("CA certificate", &e))?;
            self.write_owned(&ca_cert, cert.pem().as_bytes(), 0o644)?;
            self.write_owned(&ca_key, key.serialize_pem().as_bytes(), 0o600)?;
            key
        };
        let issuer = Issuer::new(ca_params(), ca_key);
        let key = KeyPair::generate().map_err(|e| gen_err("server key", &e))?;
        let mut params = CertificateParams::new(options.server_names.clone())
            .map_err(|e| gen_err("server certificate", &e))?;
        params.distinguished_name.push(
            DnType::CommonName,
            options.server_names.first().map_or(HOST, String::as_str),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if options.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| gen_err("server certificate", &e))?;
        self.write_owned(&data.join(SERVER_CERT), cert.pem().as_bytes(), 0o644)?;
        // The server refuses a key readable by others; it must own it (or root, 0640).
        self.write_owned(
            &data.join(SERVER_KEY),
            key.serialize_pem().as_bytes(),
            0o600,
        )
    }

    /// Appends the `include_if_exists` line to `postgresql.conf` once.
    fn include_conf(&self, conf: &Path) -> Result<bool, Error> {
        let text = fs::read_to_string(conf).map_err(|e| Error::io("read", conf, e))?;
        if text.lines().any(|l| l.trim() == INCLUDE) {
            return Ok(false);
        }
        fs::OpenOptions::new()
            .append(true)
            .open(conf)
            .and_then(|mut f| writeln!(f, "{INCLUDE}"))
            .map_err(|e| Error::io("append settings to", conf, e))?;
        Ok(true)
    }

    /// Sets every TCP line of `pg_hba.conf` to `hostssl` (TLS-only) or `host`.
    fn set_hba(&self, hba: &Path, tls_only: bool) -> Result<bool, Error> {
        let text = fs::read_to_string(hba).map_err(|e| Error::io("read", hba, e))?;
        let want = if tls_only { "hostssl" } else { "host" };
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if first == "host" || first == "hostssl" {
                out.push_str(want);
                out.push_str(&line[line.find(first).unwrap_or(0) + first.len()..]);
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        if out == text {
            return Ok(false);
        }
        self.write_owned(hba, out.as_bytes(), 0o600)?;
        Ok(true)
    }

    fn write_owned(&self, path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
        fsutil::write_atomic(path, contents, mode)?;
        self.server_user().hand_over(path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("set permissions of", path, e))
    }
}

/// The CA's parameters: the same every time, so a CA key read back signs certificates that
/// chain to the CA certificate written earlier.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn load_key(path: &Path) -> Result<KeyPair, Error> {
    let pem = fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    KeyPair::from_pem(&pem).map_err(|e| gen_err("CA key (reading it back)", &e))
}

fn gen_err(what: &'static str, err: &rcgen::Error) -> Error {
    Error::TlsGeneration {
        what,
        reason: err.to_string(),
    }
}
