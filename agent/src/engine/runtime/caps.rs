//! Linux capabilities: names, Docker's default set, `cap_add` / `cap_drop` /
//! `privileged` resolved purely ([`resolve`]), and [`apply`], the thin shell init runs
//! before its exec.
//!
//! Docker's rules: root gets the list as its bounding, permitted and effective sets;
//! any other user gets it as the bounding set only (permitted, effective, inheritable
//! and ambient stay empty, as `execve` of a non-setuid program would leave them). No
//! crate: three system calls (`prctl` bounding drop, `capset` v3, ambient clear) live in
//! [`super::sys`].

use super::sys::{self, SysError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kernel's capability names, indexed by number (`CAP_` left off).
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// One capability, by its kernel number; written `CAP_NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Capability(u8);

impl Capability {
    pub const CHOWN: Capability = Capability(0);
    pub const DAC_OVERRIDE: Capability = Capability(1);
    pub const DAC_READ_SEARCH: Capability = Capability(2);
    pub const FOWNER: Capability = Capability(3);
    pub const FSETID: Capability = Capability(4);
    pub const KILL: Capability = Capability(5);
    pub const SETGID: Capability = Capability(6);
    pub const SETUID: Capability = Capability(7);
    pub const SETPCAP: Capability = Capability(8);
    pub const NET_BIND_SERVICE: Capability = Capability(10);
    pub const NET_RAW: Capability = Capability(13);
    pub const SYS_MODULE: Capability = Capability(16);
    pub const SYS_RAWIO: Capability = Capability(17);
    pub const SYS_CHROOT: Capability = Capability(18);
    pub const SYS_PTRACE: Capability = Capability(19);
    pub const SYS_PACCT: Capability = Capability(20);
    pub const SYS_ADMIN: Capability = Capability(21);
    pub const SYS_BOOT: Capability = Capability(22);
    pub const SYS_TIME: Capability = Capability(25);
    pub const MKNOD: Capability = Capability(27);
    pub const AUDIT_WRITE: Capability = Capability(29);
    pub const SETFCAP: Capability = Capability(31);
    pub const SYSLOG: Capability = Capability(34);
    pub const PERFMON: Capability = Capability(38);
    pub const BPF: Capability = Capability(39);

    /// The kernel's number for it.
    pub fn number(self) -> u8 {
        self.0
    }

    /// Every capability this table knows (what `privileged` and `ALL` mean).
    pub fn all() -> Vec<Capability> {
        (0..NAMES.len() as u8).map(Capability).collect()
    }

    /// `chown`, `CHOWN`, `cap_chown` or `CAP_CHOWN`.
    pub fn parse(name: &str) -> Result<Capability, CapError> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        NAMES
            .iter()
            .position(|n| *n == bare)
            .map(|i| Capability(i as u8))
            .ok_or_else(|| CapError::Unknown(name.to_owned()))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMES.get(usize::from(self.0)) {
            Some(n) => write!(f, "CAP_{n}"),
            None => write!(f, "CAP_{}", self.0),
        }
    }
}

impl From<Capability> for String {
    fn from(c: Capability) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for Capability {
    type Error = CapError;
    fn try_from(s: String) -> Result<Capability, CapError> {
        Capability::parse(&s)
    }
}

/// A capability name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    #[error("unknown capability {0:?}")]
    Unknown(String),
}

/// Docker's default set (`CapEff: 00000000a80425fb` for root).
pub const DEFAULT: [Capability; 14] = [
    Capability::CHOWN,
    Capability::DAC_OVERRIDE,
    Capability::FSETID,
    Capability::FOWNER,
    Capability::MKNOD,
    Capability::NET_RAW,
    Capability::SETGID,
    Capability::SETUID,
    Capability::SETFCAP,
    Capability::SETPCAP,
    Capability::NET_BIND_SERVICE,
    Capability::SYS_CHROOT,
    Capability::KILL,
    Capability::AUDIT_WRITE,
];

/// The set as the kernel's bit mask (what /proc/PID/status shows).
pub fn mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1u64 << c.0)
}

fn is_all(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("ALL")
}

/// The final list, sorted, Docker's rules: `privileged` or `ALL` in `add` gives every
/// capability (less `drop`, for `ALL`); `ALL` in `drop` leaves only `add`; otherwise
/// the defaults less `drop` plus `add` (an added capability wins over a dropped one).
pub fn resolve(
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Result<Vec<Capability>, CapError> {
    let parse = |names: &[String]| -> Result<Vec<Capability>, CapError> {
        names
            .iter()
            .filter(|n| !is_all(n))
            .map(|n| Capability::parse(n))
            .collect()
    };
    let (added, dropped) = (parse(add)?, parse(drop)?);
    let mut caps: Vec<Capability> = if privileged {
        Capability::all()
    } else if add.iter().any(|n| is_all(n)) {
        Capability::all()
            .into_iter()
            .filter(|c| !dropped.contains(c))
            .collect()
    } else if drop.iter().any(|n| is_all(n)) {
        added
    } else {
        DEFAULT
            .into_iter()
            .filter(|c| !dropped.contains(c))
            .chain(added)
            .collect()
    };
    caps.sort();
    caps.dedup();
    Ok(caps)
}

/// Drop everything but `caps` from the bounding set (needs `CAP_SETPCAP`, so before the
/// user changes).
pub fn drop_bounding(caps: &[Capability]) -> Result<(), SysError> {
    for n in 0..64u8 {
        if !caps.contains(&Capability(n)) && !sys::capbset_drop(n)? {
            break;
        }
    }
    Ok(())
}

/// After the user change: root gets `caps` as permitted and effective (those of them
/// init still has: `privileged` on a host that withholds some means all the others);
/// anyone else nothing. Inheritable and ambient are always cleared.
pub fn apply(caps: &[Capability], uid: u32) -> Result<(), SysError> {
    let set = if uid == 0 {
        mask(caps) & sys::capget_permitted()?
    } else {
        0
    };
    sys::capset(set, set, 0)?;
    sys::clear_ambient()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn docker_default_mask() {
        assert_eq!(mask(&DEFAULT), 0xa80425fb);
        assert_eq!(mask(&resolve(&[], &[], false).unwrap()), 0xa80425fb);
    }

    #[test]
    fn names_parse_with_or_without_prefix() {
        for n in ["chown", "CHOWN", "cap_chown", "CAP_CHOWN", " Cap_Chown "] {
            assert_eq!(Capability::parse(n), Ok(Capability::CHOWN), "{n}");
        }
        assert_eq!(Capability::parse("CAP_SYS_ADMIN").unwrap().number(), 21);
        assert_eq!(Capability(40).to_string(), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(
            Capability::parse("CAP_FLY"),
            Err(CapError::Unknown("CAP_FLY".into()))
        );
    }

    #[test]
    fn add_drop_privileged_table() {
        let all = mask(&Capability::all());
        let d = 0xa80425fbu64;
        let cases: &[(&[&str], &[&str], bool, u64)] = &[
            (&[], &["CHOWN"], false, d & !1),
            (&["SYS_ADMIN"], &[], false, d | 1 << 21),
            (&["NET_ADMIN"], &["ALL"], false, 1 << 12),
            (&[], &["all"], false, 0),
            (&["ALL"], &["MKNOD"], false, all & !(1 << 27)),
            (&[], &[], true, all),
            (&[], &["ALL"], true, all),
            (&["CHOWN"], &["CHOWN"], false, d),
        ];
        for (add, drop, privileged, want) in cases {
            let got = mask(&resolve(&s(add), &s(drop), *privileged).unwrap());
            assert_eq!(
                got, *want,
                "add {add:?} drop {drop:?} privileged {privileged}"
            );
        }
        assert!(resolve(&s(&["NOPE"]), &[], false).is_err());
    }

    #[test]
    fn serde_uses_names() {
        let json = serde_json::to_string(&[Capability::KILL, Capability::SYS_ADMIN]).unwrap();
        assert_eq!(json, r#"["CAP_KILL","CAP_SYS_ADMIN"]"#);
        let back: Vec<Capability> = serde_json::from_str(r#"["kill","CAP_SYS_ADMIN"]"#).unwrap();
        assert_eq!(back, [Capability::KILL, Capability::SYS_ADMIN]);
        assert!(serde_json::from_str::<Capability>(r#""CAP_NOPE""#).is_err());
    }
}
