//! TLS the way self-hosters have it: a server certificate pinned by the channel's `ca_file`
//! (the exact certificate, as `openssl req -x509` makes it, CA:TRUE and all) or by
//! `tls_sha256` (the SHA-256 of the server's certificate). rustls verifies the handshake's
//! signatures as always; only the certificate check is the pin. Also the SMTP session over
//! such a connection (lettre has no hook for a custom verifier): STARTTLS or implicit TLS is
//! done here, then lettre speaks SMTP over the stream. Nothing is sent, AUTH included,
//! before the certificate matched. Must not accept a certificate that matches no pin.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;

/// The certificates a channel accepts, by SHA-256 of their DER encoding, and the
/// `ca_file` certificates as roots for a chain the ordinary way.
#[derive(Debug, Clone)]
pub(crate) struct Pins(Vec<[u8; 32]>, Vec<CertificateDer<'static>>);

impl Pins {
    /// From `tls_sha256` (hex, colons allowed) and/or the certificates in `ca_file`.
    pub(crate) fn new(sha256: Option<&str>, ca_file: Option<&str>) -> Result<Option<Self>, String> {
        let mut pins = Vec::new();
        let mut roots = Vec::new();
        if let Some(hex_text) = sha256 {
            let clean: String = hex_text.chars().filter(|c| *c != ':').collect();
            let bytes = hex::decode(clean.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or("`tls_sha256` must be 64 hex digits (colons allowed)")?;
            pins.push(bytes);
        }
        if let Some(path) = ca_file {
            use rustls::pki_types::pem::PemObject;
            let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("can't read `ca_file` {path}: {e}"))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("bad `ca_file` {path}: {e}"))?;
            if certs.is_empty() {
                return Err(format!("`ca_file` {path} holds no certificate"));
            }
            pins.extend(
                certs
                    .iter()
                    .map(|c| -> [u8; 32] { Sha256::digest(c.as_ref()).into() }),
            );
            roots = certs;
        }
        Ok((!pins.is_empty()).then_some(Self(pins, roots)))
    }

    /// A rustls client configuration that accepts exactly these certificates.
    pub(crate) fn client_config(&self) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut store = rustls::RootCertStore::empty();
        let _ = store.add_parsable_certificates(self.1.iter().cloned());
        let chain = (!store.is_empty())
            .then(|| {
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    provider.clone(),
                )
                .build()
                .ok()
            })
            .flatten();
        let verifier = Arc::new(PinVerifier {
            pins: self.0.clone(),
            chain,
            provider: provider.clone(),
        });
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    }
}

#[derive(Debug)]
struct PinVerifier {
    pins: Vec<[u8; 32]>,
    /// A chain to a `ca_file` root, verified the ordinary way (host name included).
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(chain) = &self.chain
            && let Ok(v) =
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            return Ok(v);
        }
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if self.pins.contains(&digest) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate matches neither `ca_file` nor `tls_sha256`".into(),
            ))
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS stream for lettre, with a replayed greeting after STARTTLS (lettre expects a
/// greeting before its EHLO; RFC 3207 has none after the upgrade).
pub(crate) struct Stream {
    prefix: Vec<u8>,
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    peer: SocketAddr,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedStream")
            .field("peer", &self.peer)
            .finish()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.drain(..n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for Stream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

/// Reads one (possibly multi-line) SMTP reply; returns its code.
async fn reply(r: &mut BufReader<TcpStream>) -> Result<u16, String> {
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .await
            .map_err(|e| format!("smtp: {e}"))?;
        if n == 0 || line.len() < 4 {
            return Err("smtp: the server closed the connection".into());
        }
        if line.as_bytes()[3] != b'-' {
            return line[..3]
                .parse()
                .map_err(|_| "smtp: a malformed reply".to_string());
        }
    }
}

/// Connects to `host:port` with `security` (`starttls` or `tls`) and a pinned certificate,
/// and returns a stream for lettre's `connect_with_transport`.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    starttls: bool,
    pins: &Pins,
) -> Result<Stream, String> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("smtp: can't connect to {host}:{port}: {e}"))?;
    let peer = tcp.peer_addr().map_err(|e| format!("smtp: {e}"))?;
    let tcp = if starttls {
        let mut r = BufReader::new(tcp);
        if reply(&mut r).await? != 220 {
            return Err("smtp: the server refused the session".into());
        }
        r.get_mut()
            .write_all(b"EHLO kithd\r\n")
            .await
            .map_err(|e| format!("smtp: {e}"))?;
        if reply(&mut r).await? != 250 {
            return Err("smtp: EHLO refused".into());
        }
        r.get_mut()
            .write_all(b"STARTTLS\r\n")
            .await
            .map_err(|e| format!("smtp: {e}"))?;
        if reply(&mut r).await? != 220 {
            return Err("smtp: the server does not offer STARTTLS".into());
        }
        r.into_inner()
    } else {
        tcp
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("smtp: `{host}` is not a valid server name"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(pins.client_config()))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("smtp: TLS handshake failed: {e}"))?;
    Ok(Stream {
        prefix: if starttls {
            b"220 kithd pinned TLS\r\n".to_vec()
        } else {
            Vec::new()
        },
        tls,
        peer,
    })
}
