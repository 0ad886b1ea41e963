//! Native HTTPS: rustls with the aws-lc-rs provider, TLS 1.3 and 1.2 only.

use crate::ServerError;
use crate::config::TlsFiles;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

pub(crate) fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, ServerError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect)
        .map_err(|e| tls_error("LATCHKEY_TLS_CERT", &files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_error(
            "LATCHKEY_TLS_CERT",
            &files.cert,
            "no certificate found".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_error("LATCHKEY_TLS_KEY", &files.key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_error("LATCHKEY_TLS_CERT", &files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            tls_error(
                "LATCHKEY_TLS_KEY",
                &files.key,
                format!("certificate and key do not fit together: {e}"),
            )
        })
}

fn tls_error(setting: &'static str, path: &std::path::Path, message: String) -> ServerError {
    ServerError::Tls {
        setting,
        path: path.to_owned(),
        message,
    }
}
