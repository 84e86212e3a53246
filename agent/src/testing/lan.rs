//! Test hosts made of network namespaces: a [`Host`] is a namespace with its
//! loopback up, a [`Lan`] a private bridge in a namespace of its own (never the
//! root namespace) with a link into each host it is plugged into. Both go on drop.

use crate::engine::network::{link, netns};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A network namespace held at a path.
pub struct Host {
    pub path: PathBuf,
}

impl Host {
    /// A new namespace at `path`, loopback up.
    pub fn create(path: &Path) -> std::io::Result<Host> {
        netns::create(path)?;
        let host = Host {
            path: path.to_owned(),
        };
        link::netlink(Some(path), |nl| async move { nl.up("lo").await })
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(host)
    }

    /// Make `cmd` start inside this host.
    pub fn enter(&self, cmd: &mut Command) -> std::io::Result<()> {
        enter(&self.path, cmd)
    }

    /// Run `f` on a thread inside this host.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> std::io::Result<T> {
        netns::run_in(Some(&self.path), f)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = netns::remove(&self.path);
    }
}

/// Make `cmd` start inside the namespace held at `path` (the file stays open in the
/// parent until `cmd` is dropped).
pub fn enter(path: &Path, cmd: &mut Command) -> std::io::Result<()> {
    let ns = std::fs::File::open(path)?;
    // SAFETY: setns is async-signal-safe; the closure owns the file, so the fd stays
    // valid for every spawn of `cmd`.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// A private bridge `lan` in a namespace of its own.
pub struct Lan {
    pub path: PathBuf,
}

impl Lan {
    /// The lan's namespace at `path`.
    pub fn new(path: &Path) -> std::io::Result<Lan> {
        netns::create(path)?;
        let lan = Lan {
            path: path.to_owned(),
        };
        link::netlink(Some(path), |nl| async move {
            nl.up("lo").await?;
            nl.bridge("lan", 1500, None).await.map(|_| ())
        })
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(lan)
    }

    /// Give the host at `host` the address `ip`/24 on `eth0`, a veth whose other
    /// end, `port`, is on the lan's bridge.
    pub fn plug(&self, host: &Path, port: &str, ip: Ipv4Addr) -> std::io::Result<()> {
        let file = std::fs::File::open(host)?;
        let fd = file.as_raw_fd();
        let (port, peer) = (port.to_owned(), format!("{port}p"));
        let peer2 = peer.clone();
        link::netlink(Some(&self.path), move |nl| async move {
            nl.veth_into(&port, &peer2, 1500, "lan", fd).await
        })
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        drop(file);
        link::netlink(Some(host), move |nl| async move {
            nl.configure(&peer, "eth0", link::mac_for(ip), 1500, (ip, 24), None)
                .await
        })
        .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = netns::remove(&self.path);
    }
}
