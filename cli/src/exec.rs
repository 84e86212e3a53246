//! `orch container exec`: a process in a running container, its terminal or pipes
//! carried as frames over an upgraded connection to the engine.

use anyhow::Context;
use api::client::EngineClient;
use api::container::ExecCreate;
use api::container::frame::{self, Decoder};
use clap::Args;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Flags of `orch container exec`.
#[derive(Args)]
pub struct ExecArgs {
    /// The container (id, id prefix or name).
    container: String,
    /// The command.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// Keep standard input open and send it to the process.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Set an environment variable `KEY=VALUE`.
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Run as `USER[:GROUP]`.
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory.
    #[arg(short, long)]
    workdir: Option<String>,
}

/// The terminal in raw mode until dropped.
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enter() -> RawMode {
        if !std::io::stdin().is_terminal() {
            return RawMode(None);
        }
        // SAFETY: termios calls on stdin with a struct they fill.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawMode(None);
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
            RawMode(Some(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restoring the settings read before.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

/// This terminal's size, if stdout is one.
fn term_size() -> Option<(u16, u16)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

fn resize_frame(rows: u16, cols: u16) -> Vec<u8> {
    let mut p = rows.to_be_bytes().to_vec();
    p.extend_from_slice(&cols.to_be_bytes());
    frame::encode(frame::RESIZE, &p)
}

/// Run `orch container exec`; exits with the process's status.
pub async fn run(client: &EngineClient, a: ExecArgs) -> anyhow::Result<ExitCode> {
    let req = ExecCreate {
        cmd: a.command.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty,
    };
    let conn = client.exec(&a.container, &req).await?;
    converse(conn, a.interactive, a.tty).await
}

/// Carry this terminal's (or pipes') side of a frame conversation on `conn`: stdin
/// out when `interactive`, terminal sizes when `tty`, output in, until the exit.
pub async fn converse(
    conn: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    interactive: bool,
    tty: bool,
) -> anyhow::Result<ExitCode> {
    let (mut rx, mut tx) = tokio::io::split(conn);
    let _raw = (tty && interactive).then(RawMode::enter);
    if tty && let Some((rows, cols)) = term_size() {
        tx.write_all(&resize_frame(rows, cols)).await?;
    }
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    if interactive {
        let stdin_tx = out_tx.clone();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 8192];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = stdin_tx.send(frame::encode(frame::STDIN_CLOSE, &[])).await;
                        break;
                    }
                    Ok(n) => {
                        if stdin_tx
                            .send(frame::encode(frame::STDIN, &buf[..n]))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
    } else {
        out_tx.send(frame::encode(frame::STDIN_CLOSE, &[])).await?;
    }
    if tty {
        let resize_tx = out_tx.clone();
        tokio::spawn(async move {
            let Ok(mut winch) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Some((rows, cols)) = term_size()
                    && resize_tx.send(resize_frame(rows, cols)).await.is_err()
                {
                    break;
                }
            }
        });
    }
    drop(out_tx);
    tokio::spawn(async move {
        while let Some(bytes) = out_rx.recv().await {
            if tx.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = rx.read(&mut buf).await.context("read from the engine")?;
        if n == 0 {
            anyhow::bail!("the engine closed the stream before the process ended");
        }
        decoder.push(&buf[..n]);
        while let Some(f) = decoder.next_frame().map_err(anyhow::Error::msg)? {
            match f.kind {
                frame::STDOUT => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&f.payload)?;
                    out.flush()?;
                }
                frame::STDERR => {
                    let mut err = std::io::stderr().lock();
                    err.write_all(&f.payload)?;
                    err.flush()?;
                }
                frame::EXIT if f.payload.len() == 4 => {
                    let code = i32::from_be_bytes([
                        f.payload[0],
                        f.payload[1],
                        f.payload[2],
                        f.payload[3],
                    ]);
                    return Ok(ExitCode::from(
                        u8::try_from(code.clamp(0, 255)).unwrap_or(255),
                    ));
                }
                frame::ERROR => anyhow::bail!("{}", String::from_utf8_lossy(&f.payload)),
                _ => {}
            }
        }
    }
}
