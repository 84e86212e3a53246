//! Per-container process limits and kernel settings, decided purely: `--ulimit
//! name=soft[:hard]` as rlimits, and `--sysctl key=value` restricted to the settings
//! a container's own namespaces hold (as Docker allows).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One rlimit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// `nofile`, `nproc`, ...
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Why a limit or setting is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("ulimit {text:?}: {why}")]
    Ulimit { text: String, why: String },
    #[error("sysctl {key:?}: {why}")]
    Sysctl { key: String, why: String },
}

/// The rlimit resource of `name`.
pub fn resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "core" => libc::RLIMIT_CORE,
        "cpu" => libc::RLIMIT_CPU,
        "data" => libc::RLIMIT_DATA,
        "fsize" => libc::RLIMIT_FSIZE,
        "locks" => libc::RLIMIT_LOCKS,
        "memlock" => libc::RLIMIT_MEMLOCK,
        "msgqueue" => libc::RLIMIT_MSGQUEUE,
        "nice" => libc::RLIMIT_NICE,
        "nofile" => libc::RLIMIT_NOFILE,
        "nproc" => libc::RLIMIT_NPROC,
        "rss" => libc::RLIMIT_RSS,
        "rtprio" => libc::RLIMIT_RTPRIO,
        "rttime" => libc::RLIMIT_RTTIME,
        "sigpending" => libc::RLIMIT_SIGPENDING,
        "stack" => libc::RLIMIT_STACK,
        "as" => libc::RLIMIT_AS,
        _ => return None,
    })
}

/// Parse `name=soft[:hard]` (`-1` is unlimited).
pub fn parse_ulimit(text: &str) -> Result<Ulimit, LimitError> {
    let bad = |why: &str| LimitError::Ulimit {
        text: text.to_owned(),
        why: why.to_owned(),
    };
    let (name, values) = text
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=SOFT[:HARD]"))?;
    if resource(name).is_none() {
        return Err(bad(
            "unknown limit (nofile, nproc, core, memlock, stack, ...)",
        ));
    }
    let value = |v: &str| match v {
        "-1" | "unlimited" => Ok(u64::MAX),
        v => v
            .parse::<u64>()
            .map_err(|_| bad("limits are numbers or -1")),
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (value(s)?, value(h)?),
        None => {
            let v = value(values)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(bad("the soft limit is above the hard one"));
    }
    Ok(Ulimit {
        name: name.to_owned(),
        soft,
        hard,
    })
}

/// Whether `key` is a setting of the IPC namespace (kernel.msg*, sem, shm*,
/// fs.mqueue.*).
pub fn is_ipc_sysctl(key: &str) -> bool {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    IPC.contains(&key) || key.starts_with("fs.mqueue.")
}

/// Check that every setting belongs to a namespace the container has (ipc, net, uts).
pub fn check_sysctls(sysctls: &BTreeMap<String, String>) -> Result<(), LimitError> {
    for (key, value) in sysctls {
        let ok = is_ipc_sysctl(key)
            || key.starts_with("net.")
            || key == "kernel.domainname"
            || key == "kernel.hostname";
        if !ok {
            return Err(LimitError::Sysctl {
                key: key.clone(),
                why: "not one a container's own namespaces hold (ipc kernel.msg*/sem/shm*, fs.mqueue.*, net.*)".into(),
            });
        }
        if key.contains("..") || key.contains('/') || value.contains('\n') {
            return Err(LimitError::Sysctl {
                key: key.clone(),
                why: "malformed".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_and_sysctls() {
        assert_eq!(
            parse_ulimit("nofile=512:1024").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 512,
                hard: 1024
            }
        );
        assert_eq!(parse_ulimit("core=-1").unwrap().hard, u64::MAX);
        for bad in ["nofile", "files=1", "nofile=2:1", "nofile=x"] {
            assert!(parse_ulimit(bad).is_err(), "{bad}");
        }
        let ok: BTreeMap<String, String> = [("net.ipv4.ip_forward".into(), "1".into())].into();
        assert!(check_sysctls(&ok).is_ok());
        let host: BTreeMap<String, String> = [("vm.swappiness".into(), "1".into())].into();
        assert!(
            check_sysctls(&host)
                .unwrap_err()
                .to_string()
                .contains("vm.swappiness")
        );
    }
}
