//! A fault-injecting HTTP/1.1 proxy on loopback: it relays requests to an upstream
//! server one per connection, and breaks the first blob download off after a given
//! number of body bytes, as a flaky network would.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A running proxy; stops on drop.
pub struct CutProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CutProxy {
    /// Relay to `upstream` (`host:port`); the first `GET .../blobs/...` response
    /// longer than `cut_after` bytes is cut after `cut_after` body bytes.
    pub fn start(upstream: &str, cut_after: u64) -> io::Result<CutProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let cut_done = Arc::new(AtomicBool::new(false));
        let (reqs, halt, upstream) = (requests.clone(), stop.clone(), upstream.to_owned());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (reqs, cut_done, upstream) = (reqs.clone(), cut_done.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = relay(conn, &upstream, &reqs, &cut_done, cut_after);
                });
            }
        });
        Ok(CutProxy {
            addr,
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// The request heads seen so far (request line and headers).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read up to and including the blank line that ends an HTTP head.
fn read_head(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(head)
}

/// The `Content-Length` of an HTTP head, 0 when absent.
fn content_length(head: &str) -> u64 {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

fn relay(
    mut client: TcpStream,
    upstream: &str,
    requests: &Mutex<Vec<String>>,
    cut_done: &AtomicBool,
    cut_after: u64,
) -> io::Result<()> {
    let head = String::from_utf8_lossy(&read_head(&mut client)?).into_owned();
    if let Ok(mut r) = requests.lock() {
        r.push(head.clone());
    }
    let length = content_length(&head);
    let mut lines: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(format!("{}\r\n\r\n", lines.join("\r\n")).as_bytes())?;
    io::copy(&mut (&mut client).take(length), &mut server)?;
    if !(head.starts_with("GET ") && head.contains("/blobs/sha256:")) {
        io::copy(&mut server, &mut client)?;
        return Ok(());
    }
    let response_head = read_head(&mut server)?;
    client.write_all(&response_head)?;
    let body_length = content_length(&String::from_utf8_lossy(&response_head));
    if body_length <= cut_after || cut_done.swap(true, Ordering::SeqCst) {
        io::copy(&mut server, &mut client)?;
        return Ok(());
    }
    io::copy(&mut (&mut server).take(cut_after), &mut client)?;
    client.flush()?;
    client.shutdown(Shutdown::Both)
}
