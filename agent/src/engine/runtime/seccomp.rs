//! The default seccomp profile, equal in intent to Docker's: a **deny-list with default
//! allow** (Docker's is an allow-list; denying the dangerous calls by name is the same
//! intent in far fewer rules). Each denied call names the capabilities that lift it, as
//! Docker's profile does (`--cap-add SYS_ADMIN` allows `mount`, `SYS_PTRACE` allows
//! `ptrace`...), so the profile is a pure function of the final capability list
//! ([`denials`]). `clone3` answers `ENOSYS` (libc then falls back to `clone`, whose
//! namespace flags the filter can inspect); everything else denied answers `EPERM`.
//!
//! [`compile`] builds BPF for x86_64 or aarch64 with `seccompiler` (pure Rust, no
//! libseccomp), numbering calls from [`super::syscalls`]: one program per errno, since
//! a seccompiler filter has one match action; the kernel runs both. Other
//! architectures' calls (i386 through `int 0x80`, arm32) kill the process, and x32
//! calls get `ENOSYS`, so nothing reaches the kernel around the list. A call an
//! architecture lacks (`iopl` on aarch64) needs no rule there.

use super::caps::Capability;
use super::sys::{self, SysError};
pub use super::syscalls::Arch;
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
    /// Its number comes from [`Arch::number`].
    pub name: &'static str,
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

const fn deny(name: &'static str, lifted_by: &'static [Capability]) -> Denial {
    Denial {
        name,
        when: When::Always,
        errno: libc::EPERM,
        lifted_by,
    }
}

/// Every call the default profile denies, with what lifts it.
pub const DENIED: &[Denial] = &[
    deny("keyctl", NONE),
    deny("add_key", NONE),
    deny("request_key", NONE),
    deny("uselib", NONE),
    deny("userfaultfd", NONE),
    // io_uring bypasses the filter for the operations it performs (Docker denies it).
    deny("io_uring_setup", NONE),
    deny("io_uring_enter", NONE),
    deny("io_uring_register", NONE),
    deny("mount", ADMIN),
    deny("umount2", ADMIN),
    deny("unshare", ADMIN),
    deny("setns", ADMIN),
    deny("pivot_root", ADMIN),
    deny("swapon", ADMIN),
    deny("swapoff", ADMIN),
    deny("quotactl", ADMIN),
    deny("lookup_dcookie", ADMIN),
    deny("mount_setattr", ADMIN),
    deny("move_mount", ADMIN),
    deny("open_tree", ADMIN),
    deny("fsopen", ADMIN),
    deny("fsconfig", ADMIN),
    deny("fsmount", ADMIN),
    deny("fspick", ADMIN),
    deny("bpf", &[Capability::SYS_ADMIN, Capability::BPF]),
    deny(
        "perf_event_open",
        &[Capability::SYS_ADMIN, Capability::PERFMON],
    ),
    Denial {
        name: "clone",
        when: When::AnyBit {
            arg: 0,
            bits: CLONE_NEW,
        },
        errno: libc::EPERM,
        lifted_by: ADMIN,
    },
    Denial {
        name: "clone3",
        when: When::Always,
        errno: libc::ENOSYS,
        lifted_by: ADMIN,
    },
    deny("reboot", &[Capability::SYS_BOOT]),
    deny("kexec_load", &[Capability::SYS_BOOT]),
    deny("kexec_file_load", &[Capability::SYS_BOOT]),
    deny("init_module", &[Capability::SYS_MODULE]),
    deny("finit_module", &[Capability::SYS_MODULE]),
    deny("delete_module", &[Capability::SYS_MODULE]),
    deny("acct", &[Capability::SYS_PACCT]),
    deny("ptrace", &[Capability::SYS_PTRACE]),
    deny("process_vm_readv", &[Capability::SYS_PTRACE]),
    deny("process_vm_writev", &[Capability::SYS_PTRACE]),
    deny("clock_settime", &[Capability::SYS_TIME]),
    deny("clock_adjtime", &[Capability::SYS_TIME]),
    deny("settimeofday", &[Capability::SYS_TIME]),
    deny("syslog", &[Capability::SYSLOG]),
    deny("open_by_handle_at", &[Capability::DAC_READ_SEARCH]),
    deny("iopl", &[Capability::SYS_RAWIO]),
    deny("ioperm", &[Capability::SYS_RAWIO]),
    Denial {
        name: "personality",
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
    #[error("seccomp filters are only built for x86_64 and aarch64, not {0}")]
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

/// BPF programs for `denials` on this machine's architecture ([`compile_for`]).
pub fn compile(denials: &[Denial]) -> Result<Vec<Vec<libc::sock_filter>>, SeccompError> {
    let arch = Arch::native().ok_or(SeccompError::Arch(std::env::consts::ARCH))?;
    compile_for(arch, denials)
}

/// BPF programs for `denials` on `arch`: one per errno, on x86_64 the first led by an
/// x32 guard.
pub fn compile_for(
    arch: Arch,
    denials: &[Denial],
) -> Result<Vec<Vec<libc::sock_filter>>, SeccompError> {
    let err = |source| SeccompError::Compile {
        arch: arch.name(),
        source,
    };
    let mut by_errno: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
    for d in denials {
        let Some(nr) = arch.number(d.name) else {
            continue;
        };
        let rules = rules(d).map_err(err)?;
        by_errno
            .entry(d.errno)
            .or_default()
            .entry(nr)
            .or_default()
            .extend(rules);
    }
    let target = match arch {
        Arch::X86_64 => TargetArch::x86_64,
        Arch::Aarch64 => TargetArch::aarch64,
    };
    let mut programs = Vec::new();
    for (errno, map) in by_errno {
        let filter = SeccompFilter::new(
            map,
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
            target,
        )
        .map_err(err)?;
        let bpf: BpfProgram = filter.try_into().map_err(err)?;
        let mut program = Vec::with_capacity(bpf.len() + 3);
        if programs.is_empty() && arch == Arch::X86_64 {
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

    /// Every call of the profile has a number on x86_64; on aarch64 all but the three
    /// x86-only ones; and the profile compiles for both.
    #[test]
    fn the_profile_resolves_and_compiles_for_x86_64_and_aarch64() {
        for d in DENIED {
            assert!(Arch::X86_64.number(d.name).is_some(), "x86_64: {}", d.name);
        }
        let missing: Vec<&str> = DENIED
            .iter()
            .map(|d| d.name)
            .filter(|n| Arch::Aarch64.number(n).is_none())
            .collect();
        assert_eq!(missing, ["uselib", "iopl", "ioperm"]);
        assert_eq!(Arch::Aarch64.number("mount"), Some(40));
        assert_eq!(Arch::Aarch64.number("clone"), Some(220));
        let arm = compile_for(Arch::Aarch64, &denials(&DEFAULT)).unwrap();
        assert_eq!(arm.len(), 2, "EPERM and ENOSYS");
        // No x32 guard: the program opens with seccompiler's arch check against
        // AUDIT_ARCH_AARCH64.
        assert_eq!((arm[0][1].code, arm[0][1].k), (0x15, 0xC000_00B7));
        assert_ne!(compile_for(Arch::X86_64, &denials(&DEFAULT)).unwrap(), arm);
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
