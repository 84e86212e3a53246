//! System call numbers by name for the architectures orch builds seccomp filters for:
//! x86_64 (`arch/x86/entry/syscalls/syscall_64.tbl`) and aarch64 (the generic table,
//! `include/uapi/asm-generic/unistd.h`), written out so a filter is right for either
//! target whatever the build host ([`super::seccomp`]).

/// An architecture a seccomp filter is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture this binary runs on, if filters can be built for it.
    pub fn native() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The number of system call `name`; `None` when this architecture has no such
    /// call (`iopl`, `ioperm`, `uselib` exist on x86 only) or the table lacks it.
    pub fn number(self, name: &str) -> Option<i64> {
        let (_, x86, arm) = TABLE.iter().find(|(n, _, _)| *n == name)?;
        match self {
            Arch::X86_64 => Some(*x86),
            Arch::Aarch64 => *arm,
        }
    }
}

/// Name, x86_64 number, aarch64 number.
const TABLE: &[(&str, i64, Option<i64>)] = &[
    ("acct", 163, Some(89)),
    ("add_key", 248, Some(217)),
    ("bpf", 321, Some(280)),
    ("clock_adjtime", 305, Some(266)),
    ("clock_settime", 227, Some(112)),
    ("clone", 56, Some(220)),
    ("clone3", 435, Some(435)),
    ("delete_module", 176, Some(106)),
    ("finit_module", 313, Some(273)),
    ("fsconfig", 431, Some(431)),
    ("fsmount", 432, Some(432)),
    ("fsopen", 430, Some(430)),
    ("fspick", 433, Some(433)),
    ("init_module", 175, Some(105)),
    ("io_uring_enter", 426, Some(426)),
    ("io_uring_register", 427, Some(427)),
    ("io_uring_setup", 425, Some(425)),
    ("ioperm", 173, None),
    ("iopl", 172, None),
    ("kexec_file_load", 320, Some(294)),
    ("kexec_load", 246, Some(104)),
    ("keyctl", 250, Some(219)),
    ("lookup_dcookie", 212, Some(18)),
    ("mount", 165, Some(40)),
    ("mount_setattr", 442, Some(442)),
    ("move_mount", 429, Some(429)),
    ("open_by_handle_at", 304, Some(265)),
    ("open_tree", 428, Some(428)),
    ("perf_event_open", 298, Some(241)),
    ("personality", 135, Some(92)),
    ("pivot_root", 155, Some(41)),
    ("process_vm_readv", 310, Some(270)),
    ("process_vm_writev", 311, Some(271)),
    ("ptrace", 101, Some(117)),
    ("quotactl", 179, Some(60)),
    ("reboot", 169, Some(142)),
    ("request_key", 249, Some(218)),
    ("setns", 308, Some(268)),
    ("settimeofday", 164, Some(170)),
    ("swapoff", 168, Some(225)),
    ("swapon", 167, Some(224)),
    ("syslog", 103, Some(116)),
    ("umount2", 166, Some(39)),
    ("unshare", 272, Some(97)),
    ("uselib", 134, None),
    ("userfaultfd", 323, Some(282)),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_numbers_distinct_per_arch() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let mut seen = std::collections::HashMap::new();
            for (name, _, _) in TABLE {
                if let Some(nr) = arch.number(name) {
                    assert_eq!(seen.insert(nr, *name), None, "{arch:?}: {nr} twice");
                }
            }
        }
    }

    /// On x86_64 the table agrees with libc's numbers (aarch64's were checked against
    /// the kernel's asm-generic/unistd.h when written).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_64_agrees_with_libc() {
        for (name, nr) in [
            ("mount", libc::SYS_mount),
            ("keyctl", libc::SYS_keyctl),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("uselib", libc::SYS_uselib),
            ("bpf", libc::SYS_bpf),
            ("personality", libc::SYS_personality),
            ("fspick", libc::SYS_fspick),
        ] {
            assert_eq!(Arch::X86_64.number(name), Some(nr), "{name}");
        }
    }

    #[cfg(target_arch = "aarch64")]
    #[test]
    fn aarch64_agrees_with_libc() {
        for (name, nr) in [
            ("mount", libc::SYS_mount),
            ("keyctl", libc::SYS_keyctl),
            ("clone", libc::SYS_clone),
            ("bpf", libc::SYS_bpf),
        ] {
            assert_eq!(Arch::Aarch64.number(name), Some(nr), "{name}");
        }
    }
}
