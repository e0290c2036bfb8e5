//! TLS to PostgreSQL with rustls (the TLS library the host already has), reading the database
//! URL's `sslmode` and `sslrootcert` as libpq does, so a URL that works with `psql` works here:
//!
//! | `sslmode`            | encrypted                 | server certificate checked                 |
//! |----------------------|---------------------------|--------------------------------------------|
//! | `disable`            | no                        | —                                          |
//! | `prefer` (default)   | when the server offers it | no (as libpq, unless `sslrootcert` is set) |
//! | `require`            | always                    | no (as libpq, unless `sslrootcert` is set) |
//! | `verify-ca`          | always                    | signed by a trusted root                   |
//! | `verify-full`        | always                    | signed by a trusted root, for this host    |
//!
//! `sslrootcert=PATH` names a PEM file of the roots to trust (a private CA, a self-signed
//! server); without it, or with `sslrootcert=system`, the operating system's roots are used. Both
//! parameters are taken out of the URL before the driver reads it (it knows only the first three
//! modes). Channel binding is not offered: SCRAM authentication works without it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Encrypted, the certificate taken as it comes (libpq's `prefer` and `require`).
    Nothing,
    /// Signed by a trusted root, for any host name.
    Chain,
    /// Signed by a trusted root and issued for the host connected to.
    ChainAndHost,
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    System,
    File(String),
}

/// The TLS part of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub check: Check,
    pub roots: Roots,
}

/// Splits `url` into the URL the driver reads (with `sslmode` one of its own three) and the TLS
/// settings; the error names the parameter and what it accepts.
pub fn split_url(url: &str) -> Result<(String, TlsSettings), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        // The `host=… dbname=…` form goes to the driver as it is (its own three modes).
        return Ok((
            url.to_string(),
            TlsSettings {
                check: Check::Nothing,
                roots: Roots::System,
            },
        ));
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    let (mut mode, mut root) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode = Some(value.to_string()),
            Some(("sslrootcert", value)) => root = Some(percent_decoded(value)?),
            _ => kept.push(pair.to_string()),
        }
    }
    let roots = match root.as_deref() {
        None | Some("system") => Roots::System,
        Some(path) => Roots::File(path.to_string()),
    };
    let (driver_mode, check) = match mode.as_deref().unwrap_or("prefer") {
        "disable" => ("disable", Check::Nothing),
        // libpq: a root file given makes `prefer` and `require` check the chain.
        "prefer" | "require" if root.is_some() => {
            (mode.as_deref().unwrap_or("prefer"), Check::Chain)
        }
        "prefer" => ("prefer", Check::Nothing),
        "require" => ("require", Check::Nothing),
        "verify-ca" => ("require", Check::Chain),
        "verify-full" => ("require", Check::ChainAndHost),
        other => {
            return Err(format!(
                "sslmode={other} is not a mode (disable, prefer, require, verify-ca or verify-full)"
            ));
        }
    };
    kept.push(format!("sslmode={driver_mode}"));
    Ok((
        format!("{base}?{}", kept.join("&")),
        TlsSettings { check, roots },
    ))
}

fn percent_decoded(text: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = tail
                .get(..2)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("sslrootcert={text} has a broken %-escape"))?;
            bytes.push(hex);
            rest = &tail[2..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("sslrootcert={text} is not UTF-8"))
}

/// The driver's TLS connector for `settings`; the error names the root file and what is wrong.
pub fn connector(settings: &TlsSettings) -> Result<RustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if settings.check == Check::Nothing {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let roots = Arc::new(roots(&settings.roots)?);
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| format!("the trusted roots cannot be used: {e}"))?;
        let verifier: Arc<dyn ServerCertVerifier> = if settings.check == Check::Chain {
            Arc::new(AnyHostName(webpki))
        } else {
            webpki
        };
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    };
    Ok(RustlsConnect(Arc::new(config)))
}

fn roots(roots: &Roots) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("sslrootcert={path} cannot be read: {e}"))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("sslrootcert={path} is not PEM certificates: {e}"))?;
            if certificates.is_empty() {
                return Err(format!("sslrootcert={path} holds no certificate"));
            }
            for certificate in certificates {
                store
                    .add(certificate)
                    .map_err(|e| format!("sslrootcert={path}: a certificate is not usable: {e}"))?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(
                    "no trusted roots were found on this system; name a PEM file with sslrootcert=PATH"
                        .into(),
                );
            }
        }
    }
    Ok(store)
}

/// Takes the server's certificate as it comes (libpq's `prefer` and `require`), still checking
/// that the server holds its key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct AnyHostName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The driver's connector: one rustls configuration for every connection of a store.
#[derive(Clone)]
pub struct RustlsConnect(Arc<rustls::ClientConfig>);

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = RustlsConnectOne;
    type Error = std::convert::Infallible;

    // Called for every connection, also over a Unix socket (with no host name) that never
    // encrypts: a name that is not one fails only if a handshake is attempted with it.
    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnectOne, Self::Error> {
        Ok(RustlsConnectOne {
            config: self.0.clone(),
            name: ServerName::try_from(domain)
                .map(|name| name.to_owned())
                .map_err(|_| format!("{domain:?} is not a host name TLS can check")),
        })
    }
}

/// One connection's TLS handshake.
pub struct RustlsConnectOne {
    config: Arc<rustls::ClientConfig>,
    name: Result<ServerName<'static>, String>,
}

impl<S> TlsConnect<S> for RustlsConnectOne
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.map_err(io::Error::other)?;
            tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await
                .map(TlsStream)
        })
    }
}

/// An encrypted connection to the server.
pub struct TlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for TlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_keeps_its_other_parameters_and_the_driver_gets_a_mode_it_knows() {
        let (url, settings) = split_url(
            "postgres://u:p@db.example:5432/bss?application_name=w1&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u:p@db.example:5432/bss?application_name=w1&sslmode=require"
        );
        assert_eq!(
            settings,
            TlsSettings {
                check: Check::ChainAndHost,
                roots: Roots::File("/etc/ca.pem".into())
            }
        );
        let (url, settings) = split_url("postgres://u@h/db").unwrap();
        assert_eq!(url, "postgres://u@h/db?sslmode=prefer");
        assert_eq!(settings.check, Check::Nothing);
        let (url, settings) =
            split_url("postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(url, "postgres://u@h/db?sslmode=require");
        assert_eq!(
            settings.check,
            Check::Chain,
            "libpq: a root file is checked"
        );
        assert_eq!(
            split_url("postgres://u@h/db?sslmode=verify-ca").unwrap().1,
            TlsSettings {
                check: Check::Chain,
                roots: Roots::System
            }
        );
        let refused = split_url("postgres://u@h/db?sslmode=strict").unwrap_err();
        assert!(refused.contains("sslmode=strict") && refused.contains("verify-full"));
    }

    #[test]
    fn a_root_file_that_is_missing_or_not_pem_is_named() {
        let missing = connector(&TlsSettings {
            check: Check::Chain,
            roots: Roots::File("/nonexistent/ca.pem".into()),
        })
        .err()
        .unwrap();
        assert!(
            missing.contains("sslrootcert=/nonexistent/ca.pem"),
            "{missing}"
        );
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let empty = connector(&TlsSettings {
            check: Check::ChainAndHost,
            roots: Roots::File(junk.display().to_string()),
        })
        .err()
        .unwrap();
        assert!(empty.contains("holds no certificate"), "{empty}");
    }

    /// Against the local server (a scratch database): which modes encrypt, and which
    /// certificates each accepts. Debian's server has TLS on with its `snakeoil` certificate
    /// (self-signed, for `localhost`); on a server without TLS, `require` must be refused.
    #[test]
    fn each_mode_encrypts_and_checks_the_certificate_as_libpq_does() {
        use crate::store::postgres::{PgStore, scratch::ScratchDb};
        let scratch = ScratchDb::create();
        let with = |query: &str| format!("{}?{query}", scratch.url);
        let encrypted = |store: &PgStore| {
            store
                .run(async |client| {
                    let row = client
                        .query_one(
                            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                            &[],
                        )
                        .await
                        .map_err(crate::store::postgres::db)?;
                    Ok(row.get::<_, bool>(0))
                })
                .unwrap()
        };
        let plain = PgStore::open(&with("sslmode=disable")).unwrap();
        assert!(!encrypted(&plain));
        let (server_tls, certificate) = plain
            .run(async |client| {
                let ssl: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
                let file: String = client
                    .query_one("SHOW ssl_cert_file", &[])
                    .await
                    .unwrap()
                    .get(0);
                Ok((ssl == "on", file))
            })
            .unwrap();
        drop(plain);
        // Over the Unix socket (no host name, never encrypted), with the default mode.
        let database = scratch.url.rsplit('/').next().unwrap().to_string();
        let socket = format!("postgresql:///{database}?host=/var/run/postgresql&user=root");
        if std::path::Path::new("/var/run/postgresql").exists() {
            assert!(!encrypted(&PgStore::open(&socket).unwrap()));
        }
        if !server_tls {
            let refused = PgStore::open(&with("sslmode=require")).err().unwrap();
            assert!(refused.to_string().contains("TLS"), "{refused}");
            eprintln!("the server has TLS off: only its refusal was checked");
            return;
        }
        assert!(encrypted(&PgStore::open(&with("sslmode=require")).unwrap()));
        assert!(
            encrypted(&PgStore::open(&scratch.url).unwrap()),
            "prefer: encrypted when offered"
        );
        let untrusted = PgStore::open(&with("sslmode=verify-full"))
            .err()
            .unwrap()
            .to_string();
        assert!(untrusted.contains("sslrootcert=PATH"), "{untrusted}");
        if std::fs::read(&certificate).is_err() {
            eprintln!(
                "the server's certificate {certificate} is not readable here: roots not checked"
            );
            return;
        }
        let root = format!("sslrootcert={certificate}");
        // Its certificate names localhost, not 127.0.0.1: the chain holds, the name does not.
        assert!(encrypted(
            &PgStore::open(&with(&format!("sslmode=verify-ca&{root}"))).unwrap()
        ));
        let wrong_name = PgStore::open(&with(&format!("sslmode=verify-full&{root}")))
            .err()
            .unwrap()
            .to_string();
        assert!(wrong_name.contains("certificate"), "{wrong_name}");
        let by_name =
            with(&format!("sslmode=verify-full&{root}")).replace("@127.0.0.1:", "@localhost:");
        assert!(encrypted(&PgStore::open(&by_name).unwrap()));
    }
}
