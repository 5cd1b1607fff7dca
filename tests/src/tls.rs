//! TLS in front of a stand-in: a test certificate authority (made with the `openssl` command)
//! and a TLS-terminating front on a free loopback port that forwards the plain bytes to a
//! stand-in (moto, Slack). A function told to trust the authority (`SSL_CERT_FILE`, as on any
//! Linux) then reaches the stand-in over real TLS, verified as it would be against AWS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A throwaway certificate authority and one server certificate for `localhost`/127.0.0.1.
pub struct TestCa {
    /// The authority's certificate (PEM): what a client must trust.
    pub ca_file: PathBuf,
    /// An empty directory, for `SSL_CERT_DIR`, so only `ca_file` is trusted.
    pub empty_dir: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("the TLS tests need the openssl command ({e}): sudo apt-get install -y openssl")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(crate::unique("ct-tls"));
        let empty_dir = dir.join("empty");
        std::fs::create_dir_all(&empty_dir).expect("temp dir");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=ct-trigger test CA",
        ];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
        openssl(&dir, &ca);
        let mut csr = vec!["req", "-subj", "/CN=localhost"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(&dir, &csr);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write extensions");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        );
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.pem"))
                .expect("server.pem")
                .collect::<Result<_, _>>()
                .expect("server certificate");
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server key");
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
        Self {
            ca_file: dir.join("ca.pem"),
            empty_dir,
            server: Arc::new(server),
        }
    }

    /// A TLS front for the stand-in at `backend` (`http://127.0.0.1:PORT`, any path ignored).
    pub async fn front(&self, backend: &str) -> Front {
        // The stand-in's host and port; any path is the caller's (see [`Front::rewrite`]).
        let backend = backend
            .strip_prefix("http://")
            .expect("an http:// stand-in")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind TLS front");
        let port = listener.local_addr().expect("local addr").port();
        let acceptor = tokio_rustls::TlsAcceptor::from(self.server.clone());
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = handshakes.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, backend, counted) =
                    (acceptor.clone(), backend.clone(), counted.clone());
                tokio::spawn(async move {
                    // A client that does not trust the authority hangs up here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        });
        Front {
            url: format!("https://localhost:{port}"),
            handshakes,
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A running TLS front.
pub struct Front {
    /// `https://localhost:PORT`.
    pub url: String,
    handshakes: Arc<AtomicUsize>,
}

impl Front {
    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// `url` (an http:// stand-in's) as reached through this front.
    pub fn rewrite(&self, url: &str) -> String {
        let rest = url
            .strip_prefix("http://")
            .and_then(|r| r.find('/').map(|i| &r[i..]))
            .unwrap_or("");
        format!("{}{rest}", self.url)
    }
}
