//! The shim's attach point: a unix socket (`<data>/attach/<id>.sock`) where clients
//! receive the container's output as frames (after a replay of the last 64 KiB) and
//! send stdin, terminal sizes and stdin-close; the exit code goes to every client at
//! the end. Single-threaded: the shim's poll loop ([`super::shim`]) asks the hub
//! which fds to watch ([`Hub::interest`]) and hands it those that are ready
//! ([`Hub::ready`]).

use api::container::frame::{self, Decoder};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// How much recent output a new client gets first.
const REPLAY: usize = 64 * 1024;
/// Input not yet taken by the container beyond which clients are not read.
const MAX_PENDING: usize = 64 * 1024;

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

struct Client {
    stream: UnixStream,
    decoder: Decoder,
}

/// Connected clients, recent output and input on its way in.
pub struct Hub {
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    replay: VecDeque<(u8, Vec<u8>)>,
    replay_bytes: usize,
    /// Where input goes (non-blocking), and what it has not taken yet.
    stdin: Option<File>,
    pending: VecDeque<u8>,
    /// A client closed stdin: close it once `pending` is written.
    closing: bool,
    terminal: bool,
}

fn nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an fd the hub owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

impl Hub {
    /// A hub feeding `input`.
    pub fn new(input: Input) -> Hub {
        let (stdin, terminal) = match input {
            Input::None => (None, false),
            Input::Pipe(w) => (Some(w), false),
            Input::Terminal(m) => (Some(m), true),
        };
        if let Some(f) = &stdin {
            nonblocking(f.as_raw_fd());
        }
        Hub {
            listener: None,
            clients: Vec::new(),
            replay: VecDeque::new(),
            replay_bytes: 0,
            stdin,
            pending: VecDeque::new(),
            closing: false,
            terminal,
        }
    }

    /// Accept clients on `path` (mode 0600).
    pub fn listen(&mut self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        self.listener = Some(listener);
        Ok(())
    }

    /// Send output of `kind` (stdout or stderr) to every client.
    pub fn output(&mut self, kind: u8, bytes: &[u8]) {
        let f = frame::encode(kind, bytes);
        self.clients.retain_mut(|c| c.stream.write_all(&f).is_ok());
        self.replay.push_back((kind, bytes.to_vec()));
        self.replay_bytes += bytes.len();
        while self.replay_bytes > REPLAY {
            match self.replay.pop_front() {
                Some((_, b)) => self.replay_bytes -= b.len(),
                None => break,
            }
        }
    }

    /// Tell every client the exit code and let them go.
    pub fn exit(&mut self, code: i32) {
        let f = frame::encode(frame::EXIT, &code.to_be_bytes());
        for mut c in self.clients.drain(..) {
            let _ = c.stream.write_all(&f);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// The fds to poll and for what: the listener, clients (unless input is backed
    /// up), and the input's fd while it has bytes to take.
    pub fn interest(&self, out: &mut Vec<libc::pollfd>) {
        let mut add = |fd: RawFd, events| {
            out.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            })
        };
        if let Some(l) = &self.listener {
            add(l.as_raw_fd(), libc::POLLIN);
        }
        if self.pending.len() < MAX_PENDING {
            for c in &self.clients {
                add(c.stream.as_raw_fd(), libc::POLLIN);
            }
        }
        if let Some(f) = self.stdin.as_ref().filter(|_| !self.pending.is_empty()) {
            add(f.as_raw_fd(), libc::POLLOUT);
        }
    }

    /// Act on the ready fds among `fds` (those [`Hub::interest`] listed).
    pub fn ready(&mut self, fds: &[libc::pollfd]) {
        let ready = |fd: RawFd| {
            fds.iter().any(|p| {
                p.fd == fd
                    && p.revents & (libc::POLLIN | libc::POLLOUT | libc::POLLHUP | libc::POLLERR)
                        != 0
            })
        };
        if let Some(fd) = self.stdin.as_ref().map(AsRawFd::as_raw_fd)
            && ready(fd)
        {
            self.flush_input();
        }
        let mut buf = [0u8; 4096];
        let mut i = 0;
        while i < self.clients.len() {
            if !ready(self.clients[i].stream.as_raw_fd()) {
                i += 1;
                continue;
            }
            match self.clients[i].stream.read(&mut buf) {
                Ok(0) | Err(_) => {
                    self.clients.swap_remove(i);
                }
                Ok(n) => {
                    self.clients[i].decoder.push(&buf[..n]);
                    while let Ok(Some(f)) = self.clients[i].decoder.next_frame() {
                        self.input(f);
                    }
                    i += 1;
                }
            }
        }
        if let Some(fd) = self.listener.as_ref().map(AsRawFd::as_raw_fd)
            && ready(fd)
        {
            self.accept();
        }
    }

    fn accept(&mut self) {
        let Some(Ok((mut stream, _))) = self.listener.as_ref().map(UnixListener::accept) else {
            return;
        };
        // A client that stops reading is dropped instead of stalling the container's
        // output for everyone.
        let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(1)));
        for (kind, bytes) in &self.replay {
            if stream.write_all(&frame::encode(*kind, bytes)).is_err() {
                return;
            }
        }
        self.clients.push(Client {
            stream,
            decoder: Decoder::default(),
        });
    }

    fn input(&mut self, f: frame::Frame) {
        match f.kind {
            frame::STDIN if self.stdin.is_some() && !self.closing => {
                self.pending.extend(&f.payload);
                self.flush_input();
            }
            // Closing a terminal's input would end the session for every client.
            frame::STDIN_CLOSE if !self.terminal => {
                self.closing = true;
                self.flush_input();
            }
            frame::RESIZE if f.payload.len() == 4 && self.terminal => {
                if let Some(m) = &self.stdin {
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

    /// Write what input the container takes now; close its stdin when asked and done.
    fn flush_input(&mut self) {
        let Some(f) = &mut self.stdin else { return };
        while !self.pending.is_empty() {
            let (head, _) = self.pending.as_slices();
            match f.write(head) {
                Ok(n) => drop(self.pending.drain(..n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.pending.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
        if self.closing {
            self.stdin = None;
        }
    }
}

/// A readable and a writable handle on a terminal master.
pub fn split_master(master: OwnedFd) -> std::io::Result<(File, File)> {
    let writer = master.try_clone()?;
    Ok((File::from(master), File::from(writer)))
}
