//! Network namespaces the engine keeps: each is a file that an nsfs bind mount holds
//! open (like `ip netns add`), so it outlives any process and a container's restart
//! joins the same one. Work inside one runs on a thread that entered it: network
//! namespaces are per thread.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

fn last(op: &str, path: &Path) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

fn cstr(path: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path with a NUL byte"))
}

/// Whether `path` holds a namespace (an nsfs mount), not just an empty file.
pub fn is_held(path: &Path) -> bool {
    let Ok(c) = cstr(path) else { return false };
    // SAFETY: statfs on a NUL-terminated path into a zeroed struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == libc::NSFS_MAGIC }
}

/// Make a new network namespace held at `path` (the file is created).
pub fn create(path: &Path) -> io::Result<()> {
    File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", path.display())))?;
    let target = cstr(path)?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            // SAFETY: unshare affects this thread only, which ends right after.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(last("unshare the network namespace for", path));
            }
            let source = c"/proc/thread-self/ns/net";
            // SAFETY: a bind mount between two NUL-terminated paths.
            if unsafe {
                libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            } != 0
            {
                return Err(last("hold the network namespace at", path));
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    });
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Let go of the namespace at `path` and remove the file; the namespace ends when
/// its last process does.
pub fn remove(path: &Path) -> io::Result<()> {
    if let Ok(c) = cstr(path) {
        // SAFETY: umount2 on a NUL-terminated path; failure (not mounted) is fine.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Run `f` on a thread inside the namespace at `path` (or the engine's own, `None`).
pub fn run_in<T: Send>(path: Option<&Path>, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<T> {
            if let Some(path) = path {
                let ns = File::open(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("open {}: {e}", path.display()))
                })?;
                // SAFETY: setns on an fd we hold; affects this thread only.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(last("enter the network namespace", path));
                }
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    })
}
