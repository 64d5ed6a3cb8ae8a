//! Pieces the benches share (included with `#[path]`; not a bench of its own).

#![allow(dead_code)]

use chrono::{DateTime, Datelike, Timelike, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The value at quantile `p` of sorted samples (NaN when there are none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A six-field cron expression for exactly `at` (UTC, once a year).
pub fn cron_at(at: DateTime<Utc>) -> String {
    format!(
        "{} {} {} {} {} *",
        at.second(),
        at.minute(),
        at.hour(),
        at.day(),
        at.month()
    )
}

/// A loopback HTTP/1.1 sink on 127.0.0.1 (port 0, reported) that answers 200 to every
/// request and hands each request's body to `on_body`.
pub async fn http_sink(on_body: impl Fn(&[u8]) + Clone + Send + Sync + 'static) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock, on_body.clone()));
        }
    });
    port
}

async fn serve(mut sock: tokio::net::TcpStream, on_body: impl Fn(&[u8])) {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        on_body(&buf[end + 4..end + 4 + len]);
        buf.drain(..end + 4 + len);
        if sock
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}
