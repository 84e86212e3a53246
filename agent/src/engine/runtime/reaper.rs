//! `init: true` (Docker's `--init`, which runs tini): the container's pid 1 stays
//! orch's init, as the container's user and under its seccomp filter, and the command
//! runs as its child. Pid 1 forwards every signal it gets to the command — a command
//! that installs no handler then still stops on SIGTERM, which the kernel would not
//! deliver to it as pid 1 — and reaps every process that ends, so orphans leave no
//! zombies (in the host's PID namespace, where it is not pid 1, it adopts them as a
//! child subreaper). It exits as the command did.

use super::init::{ERROR_FD, InitError};

/// Forks the command off pid 1. Returns in the child, which goes on to exec the
/// command (with the signal mask it had, in a process group of its own that owns the
/// terminal, if any); the parent never returns: it closes its end of the error pipe
/// (the child's says whether the exec failed) and supervises the child.
pub fn fork_command() -> Result<(), InitError> {
    // Not pid 1 (`pid: host`): orphans would go to the host's init; they come here.
    // SAFETY: getpid and prctl with integer arguments.
    if unsafe { libc::getpid() } != 1
        && unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0
    {
        return Err(failed("adopt orphans (PR_SET_CHILD_SUBREAPER) as"));
    }
    // SAFETY: sigset_t is plain data, filled by sigfillset before use.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; sigprocmask writes the old mask into it.
    let mut before: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to sigset_t values owned here.
    let blocked = unsafe {
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut before)
    };
    if blocked != 0 {
        return Err(failed("block the signals of"));
    }
    // SAFETY: this process is single-threaded (`orch init` runs before anything
    // starts a thread), so the child may run any code.
    match unsafe { libc::fork() } {
        -1 => Err(failed("fork the command off")),
        0 => {
            // SAFETY: plain calls on this process; a failure to get the terminal is
            // harmless (there may be none), so their results are not checked.
            unsafe {
                libc::setpgid(0, 0);
                if libc::isatty(0) == 1 {
                    libc::tcsetpgrp(0, libc::getpid());
                }
                if libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut()) != 0 {
                    return Err(failed("restore the signal mask of"));
                }
            }
            Ok(())
        }
        child => {
            // SAFETY: closing this process's copy of the error pipe, used no more.
            unsafe { libc::close(ERROR_FD) };
            supervise(child, &all)
        }
    }
}

/// Pid 1's loop: every signal in `set` but SIGCHLD goes to `child`; SIGCHLD reaps
/// whatever ended; when `child` did, exits with its code (128 + the signal that
/// killed it).
fn supervise(child: libc::pid_t, set: &libc::sigset_t) -> ! {
    loop {
        // SAFETY: `set` is a valid signal set; no siginfo is asked for.
        let sig = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if sig == libc::SIGCHLD {
            if let Some(code) = reap(child) {
                std::process::exit(code);
            }
        } else if sig > 0 {
            // SAFETY: signalling our own child; it may be gone already (ESRCH).
            unsafe { libc::kill(child, sig) };
        }
    }
}

/// Waits for every process that ended; `child`'s exit code if it is one of them.
fn reap(child: libc::pid_t) -> Option<i32> {
    let mut code = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return code;
        }
        if pid == child {
            code = Some(exit_code(status));
        }
    }
}

/// The exit code a shell gives for a wait status: the code, or 128 + the signal.
fn exit_code(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

fn failed(op: &'static str) -> InitError {
    InitError::Io {
        op,
        path: "the container's pid 1".into(),
        source: std::io::Error::last_os_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    #[test]
    fn exit_codes_are_a_shells() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(libc::SIGTERM), 128 + libc::SIGTERM);
        assert_eq!(exit_code(libc::SIGKILL), 137);
    }
}
