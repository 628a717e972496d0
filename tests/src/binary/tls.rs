//! TLS on the one port (`--tls-cert`, `--tls-key`): `wss://` and `https://` served, a plain
//! client closed, the files' errors at start, and the reload on SIGHUP. Certificates are made
//! by the test (a CA of its own, with rcgen); the client trusts only that CA.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{command, free_port, run};

/// The secret the TLS cases' servers verify tokens with.
const SECRET: &str = "tls-secret";

/// A throwaway certificate authority, its folder, and a client that trusts only it.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    dir: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-tls-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "switchboard test CA");
        let ca = params.self_signed(&ca_key).expect("a CA certificate");
        Pki { ca, ca_key, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A certificate for `localhost` signed by the CA, written as `cert` (the chain: the
    /// certificate, then the CA's) and `key` (PKCS#8); its DER.
    fn issue(&self, cert: &Path, key: &Path) -> Vec<u8> {
        let leaf_key = KeyPair::generate().expect("a server key");
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server parameters");
        let leaf = params
            .signed_by(&leaf_key, &self.ca, &self.ca_key)
            .expect("a server certificate");
        std::fs::write(cert, format!("{}{}", leaf.pem(), self.ca.pem())).expect("write cert");
        std::fs::write(key, leaf_key.serialize_pem()).expect("write key");
        leaf.der().to_vec()
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("the CA as a root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A TLS connection to the server on `port`, the certificate checked against the CA.
async fn tls_connect(connector: &TlsConnector, port: u16) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("localhost").expect("a server name");
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// The DER of the certificate the server presented.
fn presented(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let certs = stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a certificate");
    certs[0].to_vec()
}

/// One HTTPS request; the status code and the whole answer.
async fn https_get(connector: &TlsConnector, port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tls_connect(connector, port).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer));
    // The server ends with close_notify; a bare TCP close after the answer is fine too.
    let _ = read.await.ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    Some((status, answer))
}

/// Waits until the server `child` answers `/healthz` 200 over HTTPS on `port`.
async fn wait_until_serving_tls(port: u16, child: &mut Child, connector: &TlsConnector) {
    let start = Instant::now();
    loop {
        if let Some((status, _)) = https_get(connector, port, "/healthz").await {
            assert_eq!(status, 200, "/healthz over https");
            return;
        }
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            panic!("the TLS server exited with {status} before serving");
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the TLS server did not come up on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A `wss://` connection with `token`, checked to be answered `auth_success` first; and the
/// certificate it was served.
async fn wss_connect(connector: &TlsConnector, port: u16, token: &str) -> (Wss, Vec<u8>) {
    let tls = tls_connect(connector, port)
        .await
        .expect("a TLS connection");
    let der = presented(&tls);
    let url = format!("wss://localhost:{port}/ws?token={token}");
    let (mut ws, response) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("the WebSocket upgrade over TLS");
    assert_eq!(response.status(), 101, "upgrade answer");
    let first = next_text(&mut ws).await;
    assert!(
        first.contains("\"auth_success\""),
        "auth_success first: {first}"
    );
    (ws, der)
}

async fn next_text(ws: &mut Wss) -> String {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the connection is open")
            .expect("a frame");
        match frame {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("not a text frame: {other:?}"),
        }
    }
}

fn token(binary: &str) -> String {
    let out = run(binary, &["token", "--sub", "alice", "--jwt-secret", SECRET]);
    assert!(out.status.success(), "token subcommand: {out:?}");
    String::from_utf8(out.stdout)
        .expect("a UTF-8 token")
        .trim()
        .to_owned()
}

fn signal(child: &Child, signal: libc::c_int) {
    let pid = i32::try_from(child.id()).expect("a pid");
    // SAFETY: kill(2) with a child's pid and a plain signal number.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal sent");
}

/// With `--tls-cert` and `--tls-key` (here from `SWITCHBOARD_TLS_CERT` and
/// `SWITCHBOARD_TLS_KEY`), the one port serves `https://` (`/healthz`, `/metrics`) and
/// `wss://` (auth_success at `/ws`); a plain-HTTP client gets no HTTP answer, its socket is
/// closed, a client that starts no handshake is dropped by the handshake timeout, and the next
/// TLS client is served.
pub fn tls_serves_wss_and_https_on_one_port_and_closes_plain_clients(binary: &str) {
    let pki = Pki::new("serve");
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    pki.issue(&cert, &key);
    let token = token(binary);
    let port = free_port();
    let mut child = command(binary)
        .env("SWITCHBOARD_TLS_CERT", &cert)
        .env("SWITCHBOARD_TLS_KEY", &key)
        .args([
            "--jwt-secret",
            SECRET,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--handshake-timeout", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let connector = pki.connector();
    runtime().block_on(async {
        wait_until_serving_tls(port, &mut child, &connector).await;
        let (status, answer) = https_get(&connector, port, "/healthz")
            .await
            .expect("/healthz");
        assert_eq!(status, 200, "/healthz: {answer}");
        assert!(answer.contains("\"status\":\"ok\""), "/healthz: {answer}");
        let (status, answer) = https_get(&connector, port, "/metrics")
            .await
            .expect("/metrics");
        assert_eq!(status, 200, "/metrics: {answer}");
        assert!(
            answer.contains("switchboard_connections"),
            "/metrics: {answer}"
        );
        let (mut ws, _) = wss_connect(&connector, port, &token).await;

        // Plain HTTP to the TLS port: no HTTP answer, and the socket is closed.
        let mut plain = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        plain
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("a plain request");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer));
        assert!(read.await.is_ok(), "the plain client's socket is closed");
        assert!(
            !answer.starts_with(b"HTTP/"),
            "no HTTP answer to a plain client: {:?}",
            String::from_utf8_lossy(&answer)
        );

        // A client that never says hello is dropped at the handshake timeout, unanswered.
        let mut silent = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), silent.read_to_end(&mut answer));
        assert!(
            read.await.is_ok(),
            "a silent client is dropped within the timeout"
        );
        assert!(
            answer.is_empty(),
            "nothing sent to a silent client: {answer:?}"
        );

        // And the server goes on serving TLS, the open connection included; it counted the
        // plain client's and the silent client's failed handshakes.
        let (status, _) = https_get(&connector, port, "/healthz")
            .await
            .expect("/healthz");
        assert_eq!(status, 200, "/healthz after the plain client");
        let (_, answer) = https_get(&connector, port, "/metrics")
            .await
            .expect("/metrics");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let scrape = crate::metrics::Scrape::parse(body.to_owned());
        assert_eq!(
            scrape.value("switchboard_tls_handshake_failures", &[]),
            Some(2.0),
            "{body}"
        );
        let _ = wss_connect(&connector, port, &token).await;
        ws.send(Message::text(r#"{"type":"ping"}"#))
            .await
            .expect("a ping");
        let pong = next_text(&mut ws).await;
        assert!(pong.contains("\"pong\""), "pong: {pong}");
    });
    let _ = child.kill();
    let _ = child.wait();
}

/// One of the two flags alone, a missing file, a PEM without a certificate and a key that is
/// not the certificate's each stop the start (exit 2, no panic) with one line naming the flag
/// and the file.
pub fn tls_file_errors_stop_the_start_naming_the_flag_and_the_file(binary: &str) {
    let pki = Pki::new("errors");
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    pki.issue(&cert, &key);
    let (_, other_key) = (pki.path("other.crt"), pki.path("other.key"));
    pki.issue(&pki.path("other.crt"), &other_key);
    let missing = pki.path("missing.crt");
    let s = |p: &Path| p.display().to_string();
    let cases: [(Vec<String>, &str, Vec<String>); 5] = [
        (
            vec!["--tls-cert".into(), s(&cert)],
            "--tls-key",
            vec!["--tls-cert".into()],
        ),
        (
            vec!["--tls-key".into(), s(&key)],
            "--tls-cert",
            vec!["--tls-key".into()],
        ),
        (
            vec![
                "--tls-cert".into(),
                s(&missing),
                "--tls-key".into(),
                s(&key),
            ],
            "--tls-cert",
            vec![s(&missing), "cannot read".into()],
        ),
        (
            // A PEM file without a certificate (the key file given as the chain).
            vec!["--tls-cert".into(), s(&key), "--tls-key".into(), s(&key)],
            "--tls-cert",
            vec![s(&key), "no certificate".into()],
        ),
        (
            vec![
                "--tls-cert".into(),
                s(&cert),
                "--tls-key".into(),
                s(&other_key),
            ],
            "--tls-key",
            vec![s(&other_key), s(&cert), "does not match".into()],
        ),
    ];
    for (flags, named, also) in cases {
        let port = free_port().to_string();
        let mut args = vec!["--jwt-secret", SECRET, "--api-key", "k", "--listen"];
        let listen = format!("127.0.0.1:{port}");
        args.push(&listen);
        args.extend(flags.iter().map(String::as_str));
        let out = run(binary, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "exit status for {flags:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "no panic: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(named)).collect();
        assert_eq!(
            lines.len(),
            1,
            "one line naming {named} for {flags:?}: {stderr}"
        );
        for part in &also {
            assert!(
                lines[0].contains(part.as_str()),
                "{part:?} in: {}",
                lines[0]
            );
        }
    }
}

/// SIGHUP after the files were replaced with a second certificate: a new connection is
/// served the new certificate (the same DER), the connection opened before still works; a
/// SIGHUP with a broken key file keeps the certificate in use and logs why.
pub fn tls_sighup_reloads_the_certificate_for_new_connections_only(binary: &str) {
    let pki = Pki::new("reload");
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    let first = pki.issue(&cert, &key);
    let token = token(binary);
    let port = free_port();
    let mut child = command(binary)
        .args([
            "--jwt-secret",
            SECRET,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--tls-cert", &cert.display().to_string()])
        .args(["--tls-key", &key.display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let connector = pki.connector();
    runtime().block_on(async {
        wait_until_serving_tls(port, &mut child, &connector).await;
        let (mut old, served) = wss_connect(&connector, port, &token).await;
        assert_eq!(served, first, "the first certificate at start");

        // Replace both files (each by a rename, as a deploy would), then SIGHUP.
        let (new_cert, new_key) = (pki.path("new.crt"), pki.path("new.key"));
        let second = pki.issue(&new_cert, &new_key);
        assert_ne!(first, second);
        std::fs::rename(&new_cert, &cert).expect("replace the certificate");
        std::fs::rename(&new_key, &key).expect("replace the key");
        signal(&child, libc::SIGHUP);
        let start = Instant::now();
        let mut seen = first.clone();
        while seen != second && start.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen = presented(&tls_connect(&connector, port).await.expect("connect"));
        }
        assert!(
            seen == second,
            "a new connection is served the new certificate"
        );
        let (_fresh, served) = wss_connect(&connector, port, &token).await;
        assert_eq!(served, second, "and a new wss:// connection too");
        old.send(Message::text(r#"{"type":"ping"}"#))
            .await
            .expect("the old connection still takes a frame");
        let pong = next_text(&mut old).await;
        assert!(
            pong.contains("\"pong\""),
            "the old connection still answers: {pong}"
        );

        // A reload that fails keeps the certificate in use.
        std::fs::write(&key, "not a key").expect("break the key");
        signal(&child, libc::SIGHUP);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            child
                .try_wait()
                .expect("the child can be waited on")
                .is_none(),
            "still running after a failed reload"
        );
        let served = presented(&tls_connect(&connector, port).await.expect("connect"));
        assert_eq!(
            served, second,
            "the certificate in use stays after a failed reload"
        );
    });
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("--tls-key") && l.contains("not reloaded")),
        "the failed reload is logged with the flag: {stderr}"
    );
}

/// Large frames both ways over TLS (each more than rustls' and the socket's buffers take at
/// once: partial writes, records owed across write passes), then SIGTERM: the close 1001
/// reaches the client through TLS before the connection ends, and the process exits 0.
pub fn tls_carries_large_frames_both_ways_and_the_drain_close_arrives(binary: &str) {
    const MESSAGES: usize = 20;
    const SIZE: usize = 200_000;
    let pki = Pki::new("large");
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    pki.issue(&cert, &key);
    let token = token(binary);
    let port = free_port();
    let mut child = command(binary)
        .args([
            "--jwt-secret",
            SECRET,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--tls-cert", &cert.display().to_string()])
        .args(["--tls-key", &key.display().to_string()])
        .args(["--max-outbound-bytes", "16777216", "--drain-timeout", "2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let connector = pki.connector();
    runtime().block_on(async {
        wait_until_serving_tls(port, &mut child, &connector).await;
        let (mut reader, _) = wss_connect(&connector, port, &token).await;
        reader
            .send(Message::text(
                r#"{"type":"subscribe","topic":"big.*","id":"s"}"#,
            ))
            .await
            .expect("subscribe");
        let subscribed = next_text(&mut reader).await;
        assert!(subscribed.contains("\"subscribed\""), "{subscribed}");
        let (mut writer, _) = wss_connect(&connector, port, &token).await;
        let data = "x".repeat(SIZE);
        for i in 0..MESSAGES {
            let message =
                format!(r#"{{"type":"message","topic":"big.{i}","data":"{data}","id":"{i}"}}"#);
            writer
                .send(Message::text(message))
                .await
                .expect("a large frame");
        }
        for i in 0..MESSAGES {
            let text = next_text(&mut reader).await;
            assert!(
                text.contains(&format!("\"topic\":\"big.{i}\"")) && text.len() > SIZE,
                "message {i} whole and in order ({} bytes)",
                text.len()
            );
        }
        signal(&child, libc::SIGTERM);
        let close = loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), reader.next())
                .await
                .expect("a frame within 5 s")
                .expect("the close frame before the end")
                .expect("a frame");
            match frame {
                Message::Close(close) => break close,
                Message::Text(_) | Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(
            close.map(|c| u16::from(c.code)),
            Some(1001),
            "close 1001 over TLS"
        );
    });
    let status = super::wait_exit(&mut child, Duration::from_secs(5));
    if status.is_none() {
        let _ = child.kill();
    }
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit status after the drain"
    );
}
