//! The `smtp` plugin against a real SMTP server (aiosmtpd) that requires STARTTLS and AUTH,
//! started by the test on 127.0.0.1 with a throwaway certificate. Messages are read back
//! with Python's email parser.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::{Sandbox, root, text};

struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    cert: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A certificate for 127.0.0.1; `self_hoster` makes it the common way
/// (`openssl req -x509` with OpenSSL's defaults: CA:TRUE, no SAN, no EKU).
fn make_cert_as(dir: &Path, self_hoster: bool) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
    ]);
    if !self_hoster {
        cmd.args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ]);
    }
    let st = cmd
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success());
    (cert, key)
}

fn start(mode: &str) -> SmtpServer {
    start_as(mode, false)
}

fn start_as(mode: &str, self_hoster: bool) -> SmtpServer {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert_as(dir.path(), self_hoster);
    let maildir = dir.path().join("mail");
    let mut child = Command::new("/usr/bin/python3")
        .arg(root().join("tests/peers/smtp_server.py"))
        .arg(&maildir)
        .arg(&cert)
        .arg(&key)
        .arg(mode)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with aiosmtpd (apt-get install python3-aiosmtpd)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("smtp server said {line:?}"))
        .parse()
        .unwrap();
    SmtpServer {
        child,
        port,
        maildir,
        cert,
        _dir: dir,
    }
}

fn channel(s: &SmtpServer, security: &str, extra: &str) -> String {
    format!(
        "[channels.mail]\nplugin = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"{security}\"\nusername = \"kithd\"\npassword = {{ secret = \"smtp_password\" }}\nfrom = \"kithd <kithd@example.org>\"\nca_file = \"{}\"\ntimeout = \"3s\"\n{extra}",
        s.port,
        s.cert.display()
    )
}

fn mails(dir: &Path) -> Vec<Value> {
    let out = Command::new("/usr/bin/python3")
        .arg(root().join("tests/peers/read_mail.py"))
        .arg(dir)
        .output()
        .unwrap();
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn starttls_auth_delivers_a_proper_utf8_message() {
    let server = start("starttls");
    let sb = Sandbox::new(&channel(&server, "starttls", ""));
    let out = sb
        .send_test("mail", "sam", &[("KITHD_SECRET_SMTP_PASSWORD", "s3cret")])
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("sent through `mail` (gateway id "),
        "{}",
        text(&out.stdout)
    );
    let got = mails(&server.maildir);
    assert_eq!(got.len(), 1);
    let h = &got[0]["headers"];
    assert_eq!(h["X-Envelope-From"], "kithd@example.org");
    assert_eq!(h["X-Envelope-To"], "sam@example.org");
    assert_eq!(h["X-Auth-User"], "kithd");
    assert_eq!(h["From"], "kithd <kithd@example.org>");
    assert_eq!(h["To"], "sam@example.org");
    assert_eq!(h["Subject"], "kithd: Test");
    let mid = h["Message-ID"].as_str().unwrap();
    assert!(
        mid.starts_with("<test_") && mid.ends_with("@example.org>"),
        "{mid}"
    );
    chrono::DateTime::parse_from_rfc2822(h["Date"].as_str().unwrap()).expect("a valid Date header");
    let ct = h["Content-Type"]
        .as_str()
        .unwrap()
        .to_ascii_lowercase()
        .replace('"', "");
    assert!(ct.starts_with("text/plain; charset=utf-8"), "{ct}");
    assert_eq!(
        got[0]["body"].as_str().unwrap().trim_end(),
        "Time for your 50 mg, Alex. Grüße ☀"
    );
    assert!(!text(&out.stderr).contains("s3cret") && !text(&out.stdout).contains("s3cret"));
}

#[tokio::test]
async fn implicit_tls_works_too() {
    let server = start("tls");
    let sb = Sandbox::new(&channel(&server, "tls", ""));
    let out = sb
        .send_test("mail", "self", &[("KITHD_SECRET_SMTP_PASSWORD", "s3cret")])
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        mails(&server.maildir)[0]["headers"]["To"],
        "alex@example.org"
    );
}

#[tokio::test]
async fn wrong_password_is_a_clear_permanent_failure() {
    let server = start("starttls");
    let sb = Sandbox::new(&channel(&server, "starttls", ""));
    let out = sb
        .send_test("mail", "self", &[("KITHD_SECRET_SMTP_PASSWORD", "wrong")])
        .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let said = text(&out.stdout);
    assert!(
        said.starts_with("not sent, permanent failure: smtp: rejected:") && said.contains("535"),
        "{said}"
    );
    assert!(!said.contains("wrong"));
    assert!(mails(&server.maildir).is_empty());
}

#[tokio::test]
async fn untrusted_certificate_is_refused() {
    let server = start("starttls");
    let sb = Sandbox::new(
        &channel(&server, "starttls", "")
            .replace(&format!("ca_file = \"{}\"\n", server.cert.display()), ""),
    );
    let out = sb
        .send_test("mail", "self", &[("KITHD_SECRET_SMTP_PASSWORD", "s3cret")])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stdout);
    assert!(
        said.starts_with(
            "not sent, permanent failure: smtp: TLS failed (set `ca_file` for a private CA):"
        ),
        "{said}"
    );
    assert!(mails(&server.maildir).is_empty());
}

#[tokio::test]
async fn a_server_that_stalls_mid_session_times_out() {
    let server = start("stall");
    let sb = Sandbox::new(&channel(&server, "none", "").replace(
        "username = \"kithd\"\npassword = { secret = \"smtp_password\" }\n",
        "",
    ));
    let t = std::time::Instant::now();
    let out = sb.send_test("mail", "self", &[]).await;
    let took = t.elapsed();
    assert_eq!(
        out.status.code(),
        Some(69),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("not sent, retryable: smtp:"),
        "{}",
        text(&out.stdout)
    );
    assert!(took < std::time::Duration::from_secs(8), "{took:?}");
}

/// SHA-256 of a PEM certificate's DER, as `openssl x509 -fingerprint -sha256` prints it.
fn fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    text(&out.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .to_string()
}

fn auth_attempts(s: &SmtpServer) -> String {
    std::fs::read_to_string(format!("{}.auth", s.maildir.display())).unwrap_or_default()
}

#[tokio::test]
async fn a_self_signed_ca_true_certificate_given_as_ca_file_is_pinned() {
    // Made exactly as self-hosters make it; rustls alone rejects it (CaUsedAsEndEntity).
    for mode in ["starttls", "tls"] {
        let server = start_as(mode, true);
        let sb = Sandbox::new(&channel(&server, mode, ""));
        let out = sb
            .send_test("mail", "self", &[("KITHD_SECRET_SMTP_PASSWORD", "s3cret")])
            .await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{mode}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let got = mails(&server.maildir);
        assert_eq!(got.len(), 1, "{mode}");
        assert_eq!(got[0]["headers"]["X-Auth-User"], "kithd");
        assert_eq!(got[0]["headers"]["To"], "alex@example.org");
    }
}

#[tokio::test]
async fn tls_sha256_pins_the_server_certificate() {
    let server = start_as("starttls", true);
    let pin = fingerprint(&server.cert);
    let sb = Sandbox::new(
        &channel(&server, "starttls", &format!("tls_sha256 = \"{pin}\"\n"))
            .replace(&format!("ca_file = \"{}\"\n", server.cert.display()), ""),
    );
    let out = sb
        .send_test("mail", "self", &[("KITHD_SECRET_SMTP_PASSWORD", "s3cret")])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(mails(&server.maildir).len(), 1);
}

#[tokio::test]
async fn another_certificate_is_refused_before_any_auth() {
    for mode in ["starttls", "tls"] {
        let server = start_as(mode, true);
        let other = tempfile::tempdir().unwrap();
        let (other_cert, _) = make_cert_as(other.path(), true);
        let sb = Sandbox::new(&channel(&server, mode, "").replace(
            &server.cert.display().to_string(),
            &other_cert.display().to_string(),
        ));
        let out = sb
            .send_test("mail", "self", &[("KITHD_SECRET_SMTP_PASSWORD", "s3cret")])
            .await;
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", text(&out.stdout));
        let said = text(&out.stdout);
        assert!(
            said.contains("TLS handshake failed")
                && said.contains("matches neither `ca_file` nor `tls_sha256`"),
            "{mode}: {said}"
        );
        assert_eq!(auth_attempts(&server), "", "{mode}: AUTH was sent");
        assert!(mails(&server.maildir).is_empty());
    }
}

#[tokio::test]
async fn an_https_channel_can_pin_its_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert_as(dir.path(), true);
    let log = dir.path().join("requests.log");
    let mut child = Command::new("/usr/bin/python3")
        .arg(root().join("tests/peers/https_sink.py"))
        .args([&cert, &key, &log])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed however the test ends, so it never holds the test's output open.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _reap = Reap(child);
    let port: u16 = line.trim().strip_prefix("READY ").unwrap().parse().unwrap();
    let hook = |pin: &str| {
        format!(
            "[channels.hook]\nplugin = \"webhook\"\nurl = \"https://127.0.0.1:{port}/hook\"\n{pin}"
        )
    };
    let pin = fingerprint(&cert);
    for (name, setting, code) in [
        ("pinned", format!("tls_sha256 = \"{pin}\"\n"), 0),
        (
            "wrong pin",
            format!("tls_sha256 = \"{}\"\n", "00".repeat(32)),
            1,
        ),
        ("no pin", String::new(), 1),
    ] {
        let sb = Sandbox::new(&hook(&setting));
        let out = sb.send_test("hook", "self", &[]).await;
        let said = text(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{name}: {said}");
        if code == 1 {
            assert!(
                said.starts_with("not sent, permanent failure: TLS failed"),
                "{name}: {said}"
            );
        }
    }
    let requests = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        requests, "/hook\n",
        "only the pinned channel's request arrived"
    );
}
