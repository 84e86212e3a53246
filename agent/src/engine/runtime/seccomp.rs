//! The default seccomp profile, equal in intent to Docker's: a **deny-list with default
//! allow** (Docker's is an allow-list; denying the dangerous calls by name is the same
//! intent in far fewer rules). Each denied call names the capabilities that lift it, as
//! Docker's profile does (`--cap-add SYS_ADMIN` allows `mount`, `SYS_PTRACE` allows
//! `ptrace`...), so the profile is a pure function of the final capability list
//! ([`denials`]). `clone3` answers `ENOSYS` (libc then falls back to `clone`, whose
//! namespace flags the filter can inspect); everything else denied answers `EPERM`.
//!
//! [`compile`] builds x86_64 BPF with `seccompiler` (pure Rust, no libseccomp): one
//! program per errno, since a seccompiler filter has one match action; the kernel runs
//! both. Other architectures' calls (i386 through `int 0x80`) kill the process, and x32
//! calls get `ENOSYS`, so nothing reaches the kernel around the list.

use super::caps::Capability;
use super::sys::{self, SysError};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The profile a container runs under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seccomp {
    /// [`DENIED`], less what the container's capabilities lift.
    #[default]
    Default,
    /// No filter (`--privileged`, `--security-opt seccomp=unconfined`).
    Unconfined,
}

/// When a call is denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Always,
    /// When argument `arg` has any of these bits set (one rule per bit).
    AnyBit {
        arg: u8,
        bits: &'static [u64],
    },
    /// When argument `arg` is none of these values.
    NotIn {
        arg: u8,
        values: &'static [u64],
    },
}

/// One denied system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial {
    pub name: &'static str,
    pub nr: i64,
    pub when: When,
    pub errno: i32,
    /// Having any of these capabilities allows the call.
    pub lifted_by: &'static [Capability],
}

/// The namespace flags of `clone` (`CLONE_NEWTIME` only exists for `clone3`/`unshare`).
const CLONE_NEW: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// `personality` values Docker allows: PER_LINUX, PER_LINUX32, UNAME26,
/// UNAME26|PER_LINUX32, and the query `0xffffffff`.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

const ADMIN: &[Capability] = &[Capability::SYS_ADMIN];
const NONE: &[Capability] = &[];

const fn deny(name: &'static str, nr: i64, lifted_by: &'static [Capability]) -> Denial {
    Denial {
        name,
        nr,
        when: When::Always,
        errno: libc::EPERM,
        lifted_by,
    }
}

/// Every call the default profile denies, with what lifts it.
pub const DENIED: &[Denial] = &[
    deny("keyctl", libc::SYS_keyctl, NONE),
    deny("add_key", libc::SYS_add_key, NONE),
    deny("request_key", libc::SYS_request_key, NONE),
    deny("uselib", libc::SYS_uselib, NONE),
    deny("userfaultfd", libc::SYS_userfaultfd, NONE),
    // io_uring bypasses the filter for the operations it performs (Docker denies it).
    deny("io_uring_setup", libc::SYS_io_uring_setup, NONE),
    deny("io_uring_enter", libc::SYS_io_uring_enter, NONE),
    deny("io_uring_register", libc::SYS_io_uring_register, NONE),
    deny("mount", libc::SYS_mount, ADMIN),
    deny("umount2", libc::SYS_umount2, ADMIN),
    deny("unshare", libc::SYS_unshare, ADMIN),
    deny("setns", libc::SYS_setns, ADMIN),
    deny("pivot_root", libc::SYS_pivot_root, ADMIN),
    deny("swapon", libc::SYS_swapon, ADMIN),
    deny("swapoff", libc::SYS_swapoff, ADMIN),
    deny("quotactl", libc::SYS_quotactl, ADMIN),
    deny("lookup_dcookie", libc::SYS_lookup_dcookie, ADMIN),
    deny("mount_setattr", libc::SYS_mount_setattr, ADMIN),
    deny("move_mount", libc::SYS_move_mount, ADMIN),
    deny("open_tree", libc::SYS_open_tree, ADMIN),
    deny("fsopen", libc::SYS_fsopen, ADMIN),
    deny("fsconfig", libc::SYS_fsconfig, ADMIN),
    deny("fsmount", libc::SYS_fsmount, ADMIN),
    deny("fspick", libc::SYS_fspick, ADMIN),
    deny(
        "bpf",
        libc::SYS_bpf,
        &[Capability::SYS_ADMIN, Capability::BPF],
    ),
    deny(
        "perf_event_open",
        libc::SYS_perf_event_open,
        &[Capability::SYS_ADMIN, Capability::PERFMON],
    ),
    Denial {
        name: "clone",
        nr: libc::SYS_clone,
        when: When::AnyBit {
            arg: 0,
            bits: CLONE_NEW,
        },
        errno: libc::EPERM,
        lifted_by: ADMIN,
    },
    Denial {
        name: "clone3",
        nr: libc::SYS_clone3,
        when: When::Always,
        errno: libc::ENOSYS,
        lifted_by: ADMIN,
    },
    deny("reboot", libc::SYS_reboot, &[Capability::SYS_BOOT]),
    deny("kexec_load", libc::SYS_kexec_load, &[Capability::SYS_BOOT]),
    deny(
        "kexec_file_load",
        libc::SYS_kexec_file_load,
        &[Capability::SYS_BOOT],
    ),
    deny(
        "init_module",
        libc::SYS_init_module,
        &[Capability::SYS_MODULE],
    ),
    deny(
        "finit_module",
        libc::SYS_finit_module,
        &[Capability::SYS_MODULE],
    ),
    deny(
        "delete_module",
        libc::SYS_delete_module,
        &[Capability::SYS_MODULE],
    ),
    deny("acct", libc::SYS_acct, &[Capability::SYS_PACCT]),
    deny("ptrace", libc::SYS_ptrace, &[Capability::SYS_PTRACE]),
    deny(
        "process_vm_readv",
        libc::SYS_process_vm_readv,
        &[Capability::SYS_PTRACE],
    ),
    deny(
        "process_vm_writev",
        libc::SYS_process_vm_writev,
        &[Capability::SYS_PTRACE],
    ),
    deny(
        "clock_settime",
        libc::SYS_clock_settime,
        &[Capability::SYS_TIME],
    ),
    deny(
        "clock_adjtime",
        libc::SYS_clock_adjtime,
        &[Capability::SYS_TIME],
    ),
    deny(
        "settimeofday",
        libc::SYS_settimeofday,
        &[Capability::SYS_TIME],
    ),
    deny("syslog", libc::SYS_syslog, &[Capability::SYSLOG]),
    deny(
        "open_by_handle_at",
        libc::SYS_open_by_handle_at,
        &[Capability::DAC_READ_SEARCH],
    ),
    deny("iopl", libc::SYS_iopl, &[Capability::SYS_RAWIO]),
    deny("ioperm", libc::SYS_ioperm, &[Capability::SYS_RAWIO]),
    Denial {
        name: "personality",
        nr: libc::SYS_personality,
        when: When::NotIn {
            arg: 0,
            values: PERSONALITIES,
        },
        errno: libc::EPERM,
        lifted_by: NONE,
    },
];

/// The calls denied to a container holding `caps` (pure).
pub fn denials(caps: &[Capability]) -> Vec<Denial> {
    DENIED
        .iter()
        .filter(|d| !d.lifted_by.iter().any(|c| caps.contains(c)))
        .copied()
        .collect()
}

/// Why the filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("compile the seccomp filter for {arch}: {source}")]
    Compile {
        arch: &'static str,
        source: seccompiler::BackendError,
    },
    #[error("seccomp filters are only built for x86_64, not {0}")]
    Arch(&'static str),
}

/// x32 system calls carry this bit in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn rules(d: &Denial) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let cond = |arg, op, v| SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, v);
    match d.when {
        When::Always => Ok(Vec::new()),
        When::AnyBit { arg, bits } => bits
            .iter()
            .map(|b| SeccompRule::new(vec![cond(arg, SeccompCmpOp::MaskedEq(*b), *b)?]))
            .collect(),
        When::NotIn { arg, values } => {
            let conds = values
                .iter()
                .map(|v| cond(arg, SeccompCmpOp::Ne, *v))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(vec![SeccompRule::new(conds)?])
        }
    }
}

/// BPF programs for `denials`: one per errno, the first led by an x32 guard.
pub fn compile(denials: &[Denial]) -> Result<Vec<Vec<libc::sock_filter>>, SeccompError> {
    let arch_name = std::env::consts::ARCH;
    if arch_name != "x86_64" {
        return Err(SeccompError::Arch(arch_name));
    }
    let err = |source| SeccompError::Compile {
        arch: arch_name,
        source,
    };
    let mut by_errno: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
    for d in denials {
        let rules = rules(d).map_err(err)?;
        by_errno
            .entry(d.errno)
            .or_default()
            .entry(d.nr)
            .or_default()
            .extend(rules);
    }
    let mut programs = Vec::new();
    for (errno, map) in by_errno {
        let filter = SeccompFilter::new(
            map,
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
            TargetArch::x86_64,
        )
        .map_err(err)?;
        let bpf: BpfProgram = filter.try_into().map_err(err)?;
        let mut program = Vec::with_capacity(bpf.len() + 3);
        if programs.is_empty() {
            // ld [nr]; jge X32_SYSCALL_BIT ? ret ERRNO(ENOSYS) : continue
            program.push(stmt(0x20, 0));
            program.push(libc::sock_filter {
                code: 0x35,
                jt: 0,
                jf: 1,
                k: X32_SYSCALL_BIT,
            });
            program.push(stmt(0x06, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
        }
        program.extend(bpf.into_iter().map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        }));
        programs.push(program);
    }
    Ok(programs)
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// Install `programs` on this thread (needs `no_new_privs` or `CAP_SYS_ADMIN`).
pub fn install(programs: &[Vec<libc::sock_filter>]) -> Result<(), SysError> {
    programs
        .iter()
        .try_for_each(|p| sys::seccomp_filter(p, "the default profile"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::runtime::caps::DEFAULT;

    fn names(caps: &[Capability]) -> Vec<&'static str> {
        denials(caps).iter().map(|d| d.name).collect()
    }

    #[test]
    fn capabilities_lift_their_groups() {
        let default = names(&DEFAULT);
        for n in [
            "mount", "unshare", "keyctl", "ptrace", "clone3", "reboot", "bpf",
        ] {
            assert!(default.contains(&n), "{n} not denied by default");
        }
        let admin = names(&[DEFAULT.as_slice(), &[Capability::SYS_ADMIN]].concat());
        for n in ["mount", "unshare", "setns", "clone", "clone3", "bpf"] {
            assert!(!admin.contains(&n), "{n} still denied with SYS_ADMIN");
        }
        assert!(admin.contains(&"keyctl") && admin.contains(&"ptrace"));
        assert!(!names(&[Capability::SYS_PTRACE]).contains(&"ptrace"));
        assert!(names(&Capability::all()).iter().all(|n| {
            [
                "keyctl",
                "add_key",
                "request_key",
                "uselib",
                "userfaultfd",
                "io_uring_setup",
                "io_uring_enter",
                "io_uring_register",
                "personality",
            ]
            .contains(n)
        }));
    }

    #[test]
    fn compiles_one_program_per_errno() {
        let p = compile(&denials(&DEFAULT)).unwrap();
        assert_eq!(p.len(), 2, "EPERM and ENOSYS");
        // The x32 guard leads: ld nr; jge 0x40000000; ret ERRNO(ENOSYS).
        assert_eq!((p[0][1].code, p[0][1].k), (0x35, X32_SYSCALL_BIT));
        assert_eq!(p[0][2].k, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
        assert!(p.iter().all(|p| p.len() < 4096));
    }

    /// Install the filter in a forked child and try denied and allowed calls for real
    /// (an unprivileged process may: the child sets no_new_privs first).
    #[test]
    fn the_filter_denies_for_real() {
        let programs = compile(&denials(&DEFAULT)).unwrap();
        // SAFETY: the child only makes raw system calls, then _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            // SAFETY: raw system calls with integer arguments; _exit never returns.
            unsafe {
                let code = if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || install(&programs).is_err()
                {
                    10
                } else if libc::unshare(libc::CLONE_NEWUTS) == 0 || errno() != libc::EPERM {
                    11
                } else if libc::syscall(libc::SYS_clone3, 0, 0) == 0 || errno() != libc::ENOSYS {
                    12
                } else if libc::syscall(libc::SYS_keyctl, 0, 0) == 0 || errno() != libc::EPERM {
                    13
                } else if libc::personality(0xffff_ffff) < 0 {
                    14
                } else if libc::personality(0x0040_0000) >= 0 || errno() != libc::EPERM {
                    15
                } else if libc::getpid() <= 0 {
                    16
                } else {
                    0
                };
                libc::_exit(code)
            }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child killed: {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "see the codes above");
    }
}
