//! The certificates an HTTPS client of headroom trusts for a coordinator: the CA (or the
//! self-signed certificate) in a PEM file an operator names, instead of the built-in web roots,
//! so a coordinator behind a private CA is reached over TLS rather than plain HTTP. The agent's
//! signal sender (`[coordinator] ca_cert`) and `headroom groups --ca-cert` both read it here.

use std::path::{Path, PathBuf};

use ureq::tls::{PemItem, RootCerts, TlsConfig};

/// Why a CA file cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file could not be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, not a source: said once).
        error: std::io::Error,
    },
    /// The file holds no PEM certificate.
    #[error("{}: no PEM certificate in it", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
}

/// A TLS configuration trusting only the certificates in the PEM file `path`.
pub fn trusting(path: &Path) -> Result<TlsConfig, TrustError> {
    let pem = std::fs::read(path).map_err(|error| TrustError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(TrustError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&certs))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = trusting(&missing).unwrap_err().to_string();
        assert!(e.contains("missing.pem: cannot read"), "{e}");
        let key_only = dir.path().join("key.pem");
        std::fs::write(
            &key_only,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = trusting(&key_only).unwrap_err().to_string();
        assert!(e.contains("key.pem: no PEM certificate in it"), "{e}");
    }
}
