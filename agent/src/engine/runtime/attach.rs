//! The shim's attach point: a unix socket (`<data>/attach/<id>.sock`) where clients
//! receive the container's output as frames (after a replay of the last 64 KiB) and
//! send stdin, terminal sizes and stdin-close; the exit code goes to every client at
//! the end.

use api::container::frame::{self, Decoder};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How much recent output a new client gets first.
const REPLAY: usize = 64 * 1024;

/// The attach socket of container `id` in the data dir `data` (short: socket paths
/// are limited to 108 bytes).
pub fn socket_path(data: &Path, id: &str) -> PathBuf {
    data.join("attach")
        .join(format!("{}.sock", &id[..id.len().min(24)]))
}

/// Where attached clients' input goes.
pub enum Input {
    /// Nowhere: the container has no open stdin.
    None,
    /// The write end of the container's stdin pipe.
    Pipe(File),
    /// The master of its terminal (input, and resizes).
    Terminal(File),
}

struct State {
    clients: Vec<UnixStream>,
    replay: VecDeque<(u8, Vec<u8>)>,
    replay_bytes: usize,
    /// Input bytes go to a writer thread, never written under the lock (a full
    /// stdin pipe would stall the container's output).
    stdin: Option<std::sync::mpsc::Sender<Vec<u8>>>,
    /// The terminal's master, for resizes.
    terminal: Option<File>,
}

/// Connected clients and recent output.
#[derive(Clone)]
pub struct Hub(Arc<Mutex<State>>);

impl Hub {
    /// A hub feeding `input`.
    pub fn new(input: Input) -> Hub {
        let (writer, terminal) = match input {
            Input::None => (None, None),
            Input::Pipe(w) => (Some(w), None),
            Input::Terminal(m) => {
                let resize = m.try_clone().ok();
                (Some(m), resize)
            }
        };
        let stdin = writer.map(|mut w| {
            let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
            std::thread::spawn(move || {
                while let Ok(bytes) = rx.recv() {
                    if w.write_all(&bytes).is_err() {
                        break;
                    }
                }
            });
            tx
        });
        Hub(Arc::new(Mutex::new(State {
            clients: Vec::new(),
            replay: VecDeque::new(),
            replay_bytes: 0,
            stdin,
            terminal,
        })))
    }

    /// Send output of `kind` (stdout or stderr) to every client.
    pub fn output(&self, kind: u8, bytes: &[u8]) {
        let Ok(mut s) = self.0.lock() else { return };
        let f = frame::encode(kind, bytes);
        s.clients.retain_mut(|c| c.write_all(&f).is_ok());
        s.replay.push_back((kind, bytes.to_vec()));
        s.replay_bytes += bytes.len();
        while s.replay_bytes > REPLAY {
            match s.replay.pop_front() {
                Some((_, b)) => s.replay_bytes -= b.len(),
                None => break,
            }
        }
    }

    /// Tell every client the exit code and let them go.
    pub fn exit(&self, code: i32) {
        let Ok(mut s) = self.0.lock() else { return };
        let f = frame::encode(frame::EXIT, &code.to_be_bytes());
        for mut c in s.clients.drain(..) {
            let _ = c.write_all(&f);
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }

    fn input(&self, f: frame::Frame) {
        let Ok(mut s) = self.0.lock() else { return };
        match f.kind {
            frame::STDIN => {
                if let Some(tx) = &s.stdin {
                    let _ = tx.send(f.payload);
                }
            }
            // Closing a terminal's input would end the session for every client.
            frame::STDIN_CLOSE if s.terminal.is_none() => s.stdin = None,
            frame::RESIZE if f.payload.len() == 4 => {
                if let Some(m) = &s.terminal {
                    let ws = libc::winsize {
                        ws_row: u16::from_be_bytes([f.payload[0], f.payload[1]]),
                        ws_col: u16::from_be_bytes([f.payload[2], f.payload[3]]),
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    // SAFETY: TIOCSWINSZ with a valid winsize on the terminal's master.
                    unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                }
            }
            _ => {}
        }
    }

    fn join(&self, mut conn: UnixStream) {
        // A client that stops reading is dropped instead of stalling the container's
        // output for everyone.
        let _ = conn.set_write_timeout(Some(std::time::Duration::from_secs(1)));
        let Ok(mut s) = self.0.lock() else { return };
        for (kind, bytes) in &s.replay {
            if conn.write_all(&frame::encode(*kind, bytes)).is_err() {
                return;
            }
        }
        if let Ok(reader) = conn.try_clone() {
            s.clients.push(conn);
            let hub = self.clone();
            std::thread::spawn(move || hub.read_client(reader));
        }
    }

    fn read_client(&self, mut conn: UnixStream) {
        let mut decoder = Decoder::default();
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            decoder.push(&buf[..n]);
            while let Ok(Some(f)) = decoder.next_frame() {
                self.input(f);
            }
        }
    }

    /// Accept clients on `path` (mode 0600) in a thread of its own.
    pub fn serve(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let hub = self.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                hub.join(conn);
            }
        });
        Ok(())
    }
}

/// A readable and a writable handle on a terminal master.
pub fn split_master(master: OwnedFd) -> std::io::Result<(File, File)> {
    let writer = master.try_clone()?;
    Ok((File::from(master), File::from(writer)))
}
