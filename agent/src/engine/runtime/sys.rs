//! Thin, checked wrappers over the system calls the runtime makes. Each error names
//! the call and its object ("mount proc on /x/proc: Operation not permitted").

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A failed system call: which, on what, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{call} {what}: {source}")]
pub struct SysError {
    pub call: &'static str,
    pub what: String,
    pub source: io::Error,
}

fn cstr(s: impl AsRef<OsStr>) -> CString {
    CString::new(s.as_ref().as_bytes()).unwrap_or_else(|_| CString::from(c"?"))
}

fn check(
    ret: libc::c_int,
    call: &'static str,
    what: impl FnOnce() -> String,
) -> Result<(), SysError> {
    if ret == 0 {
        Ok(())
    } else {
        Err(SysError {
            call,
            what: what(),
            source: io::Error::last_os_error(),
        })
    }
}

/// `mount(2)`.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), SysError> {
    let src = cstr(source);
    let tgt = cstr(target);
    let fs = fstype.map(cstr);
    let dat = data.map(cstr);
    // SAFETY: every pointer is a valid NUL-terminated string or null.
    let ret = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fs.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            dat.as_ref().map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    check(ret, "mount", || {
        format!(
            "{} on {} ({})",
            source,
            target.display(),
            fstype.unwrap_or("bind")
        )
    })
}

/// `umount2(2)`.
pub fn umount(target: &Path, flags: libc::c_int) -> Result<(), SysError> {
    let t = cstr(target);
    // SAFETY: valid C string.
    let ret = unsafe { libc::umount2(t.as_ptr(), flags) };
    check(ret, "umount", || target.display().to_string())
}

/// `pivot_root(2)` with both arguments `.`: the old root ends up stacked under the
/// new one and is detached right after (as runc does).
pub fn pivot_root_here(root: &Path) -> Result<(), SysError> {
    std::env::set_current_dir(root).map_err(|source| SysError {
        call: "chdir",
        what: root.display().to_string(),
        source,
    })?;
    let dot = cstr(".");
    // SAFETY: valid C strings; pivot_root has no libc wrapper.
    let ret =
        unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } as libc::c_int;
    check(ret, "pivot_root", || root.display().to_string())?;
    umount(Path::new("."), libc::MNT_DETACH)?;
    std::env::set_current_dir("/").map_err(|source| SysError {
        call: "chdir",
        what: "/".into(),
        source,
    })
}

/// `mknod(2)` of a character device.
pub fn mknod_char(path: &Path, mode: libc::mode_t, major: u32, minor: u32) -> Result<(), SysError> {
    let p = cstr(path);
    // SAFETY: valid C string; makedev is pure arithmetic.
    let ret = unsafe {
        libc::mknod(
            p.as_ptr(),
            libc::S_IFCHR | mode,
            libc::makedev(major, minor),
        )
    };
    check(ret, "mknod", || path.display().to_string())
}

/// `sethostname(2)`.
pub fn sethostname(name: &str) -> Result<(), SysError> {
    // SAFETY: pointer and length of a live byte slice.
    let ret = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
    check(ret, "sethostname", || name.to_owned())
}

pub fn setdomainname(name: &str) -> Result<(), SysError> {
    // SAFETY: pointer and length of a live byte slice.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    check(ret, "setdomainname", || name.to_owned())
}

/// Become `uid`:`gid` with supplementary `groups`.
pub fn set_ids(uid: u32, gid: u32, groups: &[u32]) -> Result<(), SysError> {
    let what = || format!("{uid}:{gid}");
    // SAFETY: pointer and length of a live slice of gid_t.
    check(
        unsafe { libc::setgroups(groups.len(), groups.as_ptr()) },
        "setgroups",
        what,
    )?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setresgid(gid, gid, gid) }, "setresgid", what)?;
    check(unsafe { libc::setresuid(uid, uid, uid) }, "setresuid", what)
}

/// Set `PR_SET_NO_NEW_PRIVS`.
pub fn no_new_privs() -> Result<(), SysError> {
    // SAFETY: prctl with integer arguments.
    let ret = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    check(ret, "prctl", || "PR_SET_NO_NEW_PRIVS".into())
}

/// `execve(2)` of `program` with `args` and `env`; returns only on failure, with the
/// OS error.
pub fn execve(program: &Path, args: &[String], env: &[String]) -> io::Error {
    let prog = cstr(program);
    let argv: Vec<CString> = args.iter().map(cstr).collect();
    let envp: Vec<CString> = env.iter().map(cstr).collect();
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: NUL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(prog.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    io::Error::last_os_error()
}

/// `unshare(2)` of the namespaces in `flags`.
pub fn unshare(flags: libc::c_int) -> Result<(), SysError> {
    // SAFETY: plain integer argument.
    let ret = unsafe { libc::unshare(flags) };
    check(ret, "unshare", || format!("{flags:#x}"))
}

/// Drop capability `cap` from the bounding set; `false` when the kernel has no such
/// capability (past `cap_last_cap`).
pub fn capbset_drop(cap: u8) -> Result<bool, SysError> {
    // SAFETY: prctl with integer arguments.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
    if ret != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        return Ok(false);
    }
    check(ret, "prctl", || format!("PR_CAPBSET_DROP {cap}")).map(|()| true)
}

/// The `capset(2)` v3 header (`_LINUX_CAPABILITY_VERSION_3`).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// One 32-bit half of the three sets.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Set this thread's effective, permitted and inheritable capability masks.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), SysError> {
    let mut header = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let half = |shift: u32| CapData {
        effective: (effective >> shift) as u32,
        permitted: (permitted >> shift) as u32,
        inheritable: (inheritable >> shift) as u32,
    };
    let data = [half(0), half(32)];
    // SAFETY: a v3 header and two data structs, as capset(2) expects.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    } as libc::c_int;
    check(ret, "capset", || {
        format!("effective {effective:#x} permitted {permitted:#x}")
    })
}

/// This thread's permitted capability mask.
pub fn capget_permitted() -> Result<u64, SysError> {
    let mut header = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let empty = CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    };
    let mut data = [empty; 2];
    // SAFETY: a v3 header and room for two data structs, as capget(2) expects.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    } as libc::c_int;
    check(ret, "capget", || "permitted".into())?;
    Ok(u64::from(data[0].permitted) | u64::from(data[1].permitted) << 32)
}

/// Clear the ambient capability set.
pub fn clear_ambient() -> Result<(), SysError> {
    // SAFETY: prctl with integer arguments.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    check(ret, "prctl", || "PR_CAP_AMBIENT_CLEAR_ALL".into())
}

/// Install a seccomp BPF filter on this thread (`seccomp(2)`, `SECCOMP_SET_MODE_FILTER`).
/// Needs `no_new_privs` or `CAP_SYS_ADMIN`; sets neither itself.
pub fn seccomp_filter(program: &[libc::sock_filter], what: &str) -> Result<(), SysError> {
    let prog = libc::sock_fprog {
        len: program.len().min(usize::from(u16::MAX)) as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: the kernel copies the program from a valid sock_fprog during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    } as libc::c_int;
    check(ret, "seccomp", || what.to_owned())
}

/// Send the file descriptor `fd` over the unix socket `sock` (`SCM_RIGHTS`).
pub fn send_fd(sock: RawFd, fd: RawFd) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE is pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: a zeroed msghdr pointing at live buffers; the control message is
    // written inside `control` through the CMSG macros.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receive a file descriptor sent with [`send_fd`] on `sock`.
pub fn recv_fd(sock: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE is pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: as in send_fd; the received fd is checked before it is owned.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        if libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "no file descriptor arrived",
            ));
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the message carried no file descriptor",
            ));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
        Ok(std::os::fd::OwnedFd::from_raw_fd(fd))
    }
}

/// Make a new terminal from this mount namespace's `/dev/ptmx` the controlling
/// terminal and stdio of this process (owned by `uid`); the master end is returned.
pub fn console(uid: u32) -> Result<std::os::fd::OwnedFd, SysError> {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;
    let open = |path: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| SysError {
                call: "open",
                what: path.to_owned(),
                source,
            })
    };
    let master = open("/dev/ptmx")?;
    let m = master.as_raw_fd();
    let mut unlock: libc::c_int = 0;
    let mut n: libc::c_uint = 0;
    // SAFETY: ioctls on the ptmx just opened, with valid pointers.
    check(
        unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &mut unlock) },
        "ioctl",
        || "TIOCSPTLCK".into(),
    )?;
    check(
        unsafe { libc::ioctl(m, libc::TIOCGPTN, &mut n) },
        "ioctl",
        || "TIOCGPTN".into(),
    )?;
    let slave = open(&format!("/dev/pts/{n}"))?;
    let s = slave.as_raw_fd();
    // SAFETY: plain calls on fds we own; the slave becomes stdio and the controlling
    // terminal of a new session.
    unsafe {
        check(libc::fchown(s, uid, u32::MAX), "fchown", || {
            format!("/dev/pts/{n}")
        })?;
        if libc::setsid() < 0 {
            return Err(SysError {
                call: "setsid",
                what: format!("for /dev/pts/{n}"),
                source: io::Error::last_os_error(),
            });
        }
        check(libc::ioctl(s, libc::TIOCSCTTY, 0), "ioctl", || {
            "TIOCSCTTY".into()
        })?;
        for target in 0..3 {
            if libc::dup2(s, target) < 0 {
                return Err(SysError {
                    call: "dup2",
                    what: format!("/dev/pts/{n}"),
                    source: io::Error::last_os_error(),
                });
            }
        }
    }
    Ok(OwnedFd::from(master))
}
