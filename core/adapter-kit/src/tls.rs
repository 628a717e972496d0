//! TLS for both adapters: the certificate and key read from their PEM files, the rustls
//! [`ServerConfig`](rustls::ServerConfig) the adapters hand their connections to, and the
//! reload that swaps the certificate for new handshakes (SIGHUP in the binaries).
//!
//! ```no_run
//! use switchboard_adapter_kit::tls::Tls;
//! use switchboard_core::http::TlsFiles;
//!
//! let tls = Tls::load(&TlsFiles::new("cert.pem", "key.pem"))?;
//! let config = tls.server_config(); // for a rustls ServerConnection or a TlsAcceptor
//! // ... later, the files replaced:
//! tls.reload()?; // new handshakes use the new certificate; open connections keep theirs
//! # let _ = config;
//! # Ok::<(), switchboard_adapter_kit::tls::TlsError>(())
//! ```
//!
//! The errors name the flag that gives the file in both binaries (`--tls-cert`, `--tls-key`)
//! and the file's path.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use switchboard_core::http::TlsFiles;

/// Why the certificate and key cannot serve TLS: each names the flag and the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file cannot be read.
    #[error("--tls-cert {}: cannot read it: {source}", path.display())]
    ReadCertificate {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: io::Error,
    },
    /// The key file cannot be read.
    #[error("--tls-key {}: cannot read it: {source}", path.display())]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: io::Error,
    },
    /// The certificate file is not valid PEM.
    #[error("--tls-cert {}: not a PEM certificate chain: {source}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error(
        "--tls-cert {}: no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks, the \
         server's certificate first)",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key rustls can read.
    #[error(
        "--tls-key {}: no private key in it (expected a PEM PKCS#8, RSA or SEC1 private key){}",
        path.display(),
        detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said, if it failed rather than found nothing.
        detail: Option<String>,
    },
    /// The key is a private key of a kind or size rustls does not sign with.
    #[error("--tls-key {}: not a usable private key: {source}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The key is not the certificate's.
    #[error(
        "--tls-key {} does not match the certificate in --tls-cert {}",
        key.display(),
        certificate.display()
    )]
    KeyMismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The first certificate cannot be parsed.
    #[error("--tls-cert {}: not a usable certificate: {source}", path.display())]
    UnusableCertificate {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// rustls refused the settings (its protocol versions with this provider).
    #[error("TLS settings: {0}")]
    Settings(rustls::Error),
}

/// A loaded certificate and key, ready to serve, and reloadable from the same files.
///
/// Cheap to clone: every clone shares the one current certificate, so a [`reload`](Self::reload)
/// through any of them is seen by every acceptor.
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ServerConfig>,
    current: Arc<CurrentCertificate>,
    provider: Arc<CryptoProvider>,
    files: TlsFiles,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate chain and the key from `files` and builds the server's TLS
    /// settings (TLS 1.2 and 1.3, rustls' safe defaults, ALPN `http/1.1`, no client
    /// certificates).
    pub fn load(files: &TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = read_certified_key(files, &provider)?;
        let current = Arc::new(CurrentCertificate(RwLock::new(Arc::new(key))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Settings)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // Browsers offer h2 as well: this server speaks HTTP/1.1 (WebSocket upgrades included).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
            current,
            provider,
            files: files.clone(),
        })
    }

    /// The rustls settings to accept connections with (a `ServerConnection::new` each, or a
    /// `tokio_rustls::TlsAcceptor`).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// Reads both files again: new handshakes use the new certificate, open connections keep
    /// theirs. On an error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = read_certified_key(&self.files, &self.provider)?;
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        Ok(())
    }

    /// The files the certificate and key are read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// The certificate new handshakes get: swapped by a reload.
#[derive(Debug)]
struct CurrentCertificate(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CurrentCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The chain and key of `files`, checked to belong together.
fn read_certified_key(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(&files.certificate)?;
    let key = read_key(&files.private_key)?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::BadKey {
            path: files.private_key.clone(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        // A key that cannot tell its public half cannot be checked: rustls accepts it too.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            certificate: files.certificate.clone(),
            key: files.private_key.clone(),
        }),
        Err(source) => Err(TlsError::UnusableCertificate {
            path: files.certificate.clone(),
            source,
        }),
    }
}

/// The certificates of the PEM file at `path`, at least one.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadCertificate {
        path: path.to_owned(),
        source,
    })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::BadCertificate {
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// The first private key of the PEM file at `path`.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadKey {
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::NoKey {
        path: path.to_owned(),
        detail: match e {
            rustls_pki_types::pem::Error::NoItemsFound => None,
            other => Some(other.to_string()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost` and its key, in PEM, written to `dir`.
    fn write_pair(dir: &Path, name: &str) -> TlsFiles {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let files = TlsFiles::new(
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&files.certificate, cert.cert.pem()).unwrap();
        std::fs::write(&files.private_key, cert.key_pair.serialize_pem()).unwrap();
        files
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sb-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn served(tls: &Tls) -> Vec<u8> {
        let current = tls.current.0.read().unwrap().clone();
        current.cert[0].to_vec()
    }

    #[test]
    fn a_pair_loads_and_a_reload_swaps_the_certificate() {
        let dir = temp_dir("reload");
        let files = write_pair(&dir, "a");
        let tls = Tls::load(&files).unwrap();
        let first = served(&tls);
        let second = write_pair(&dir, "b");
        std::fs::rename(&second.certificate, &files.certificate).unwrap();
        std::fs::rename(&second.private_key, &files.private_key).unwrap();
        tls.reload().unwrap();
        assert_ne!(served(&tls), first, "the new certificate is served");
        std::fs::write(&files.private_key, "not a key").unwrap();
        let err = tls.reload().unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        assert_ne!(served(&tls), first, "a failed reload keeps the certificate");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn each_bad_file_is_named_with_its_flag() {
        let dir = temp_dir("bad");
        let good = write_pair(&dir, "good");
        let other = write_pair(&dir, "other");
        let missing = dir.join("missing.pem");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let cases = [
            (TlsFiles::new(&missing, &good.private_key), "--tls-cert"),
            (TlsFiles::new(&good.certificate, &missing), "--tls-key"),
            (TlsFiles::new(&empty, &good.private_key), "--tls-cert"),
            (TlsFiles::new(&good.certificate, &empty), "--tls-key"),
            // The certificate file given as the key and the other way round.
            (
                TlsFiles::new(&good.private_key, &good.private_key),
                "--tls-cert",
            ),
            (
                TlsFiles::new(&good.certificate, &good.certificate),
                "--tls-key",
            ),
            (
                TlsFiles::new(&good.certificate, &other.private_key),
                "match",
            ),
        ];
        for (files, named) in cases {
            let err = Tls::load(&files).unwrap_err().to_string();
            assert!(err.contains(named), "{files:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        let mismatch = Tls::load(&TlsFiles::new(&good.certificate, &other.private_key));
        let err = mismatch.unwrap_err().to_string();
        assert!(
            err.contains(&*other.private_key.to_string_lossy())
                && err.contains(&*good.certificate.to_string_lossy()),
            "both files named: {err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
