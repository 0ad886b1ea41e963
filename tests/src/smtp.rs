//! A minimal SMTP receiver on loopback, so mail goes through Latchkey's real SMTP client
//! (lettre) and the tests read what arrived. It speaks just enough of RFC 5321: EHLO/HELO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A received mail: envelope recipients and the message as sent (headers and body).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub rcpt_to: Vec<String>,
    pub data: String,
}

impl ReceivedMail {
    /// The message with a quoted-printable body decoded (RFC 2045 §6.7).
    pub fn text(&self) -> String {
        if !self
            .data
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: quoted-printable")
        {
            return self.data.clone();
        }
        let raw = self.data.replace("=\r\n", "");
        let bytes = raw.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'=', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The first `http…` URL in the message.
    pub fn link(&self) -> Option<String> {
        let text = self.text();
        let start = text.find("http")?;
        let end = text[start..]
            .find(|c: char| c.is_whitespace())
            .map_or(text.len(), |e| start + e);
        Some(text[start..end].to_owned())
    }
}

pub struct SmtpSink {
    pub url: String,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp sink");
        let url = format!("smtp://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(session(conn, store.clone()));
            }
        });
        Self { url, received }
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits up to `secs` for at least `n` mails.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<ReceivedMail> {
        for _ in 0..secs * 20 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.received()
    }
}

async fn session(conn: tokio::net::TcpStream, store: Arc<Mutex<Vec<ReceivedMail>>>) {
    let (r, mut w) = conn.into_split();
    let mut lines = BufReader::new(r).lines();
    let _ = w.write_all(b"220 sink ESMTP\r\n").await;
    let mut rcpt = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "NOOP" => b"250 ok\r\n",
            "RSET" => {
                rcpt.clear();
                b"250 ok\r\n"
            }
            "RCPT" => {
                let to = line.split(':').nth(1).unwrap_or_default();
                rcpt.push(to.trim().trim_matches(['<', '>']).to_owned());
                b"250 ok\r\n"
            }
            "DATA" => {
                let _ = w.write_all(b"354 go ahead\r\n").await;
                let mut data = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                if let Ok(mut s) = store.lock() {
                    s.push(ReceivedMail {
                        rcpt_to: std::mem::take(&mut rcpt),
                        data,
                    });
                }
                b"250 queued\r\n"
            }
            "QUIT" => {
                let _ = w.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 not implemented\r\n",
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}
