//! (pure) What a container asks for beyond the engine's defaults, checked and turned
//! into the [`Tuning`] init applies: the size of /dev/shm, the OOM score adjustment,
//! the domain name, the host's IPC, PID and UTS namespaces (and `net.*` sysctls kept to a
//! network namespace of its own); and the check of one `dns_search`/`dns_opt` entry
//! ([`check_entry`]), which [`super::resolv`] writes.

use super::init::Tuning;
use super::limits::is_ipc_sysctl;
use api::container::ContainerCreate;

/// Why a setting cannot be taken. Each names its key as compose spells it
/// ([`TuningError::key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TuningError {
    /// One entry of a list (`dns_search[1] "a b": ...`).
    Entry {
        key: &'static str,
        index: usize,
        value: String,
        why: &'static str,
    },
    OomScoreAdj(i64),
    Domainname(String),
    IpcMode(String),
    UtsMode(String),
    /// A setting (`key`) that does not go with the host's namespace `ns` (`ipc: host`).
    HostNamespace {
        ns: &'static str,
        key: String,
        why: &'static str,
    },
    PidMode(String),
    /// `pid: host` in a user namespace of its own.
    PidHostUserns,
    /// A `net.*` sysctl in a network namespace not the container's own.
    NetSysctl {
        key: String,
        mode: String,
    },
}

impl TuningError {
    /// The key at fault (`dns_opt[0]`, `oom_score_adj`, `ipc`).
    pub fn key(&self) -> String {
        match self {
            TuningError::Entry { key, index, .. } => format!("{key}[{index}]"),
            TuningError::OomScoreAdj(_) => "oom_score_adj".into(),
            TuningError::Domainname(_) => "domainname".into(),
            TuningError::IpcMode(_) => "ipc".into(),
            TuningError::UtsMode(_) => "uts".into(),
            TuningError::HostNamespace { ns, .. } => (*ns).into(),
            TuningError::PidMode(_) | TuningError::PidHostUserns => "pid".into(),
            TuningError::NetSysctl { key, .. } => format!("sysctls.{key}"),
        }
    }

    /// What is wrong with its value.
    pub fn detail(&self) -> String {
        match self {
            TuningError::Entry { value, why, .. } => format!("{value:?}: {why}"),
            TuningError::OomScoreAdj(v) => {
                format!("{v} is out of range: the kernel takes -1000 to 1000")
            }
            TuningError::Domainname(name) => {
                format!("{name:?}: at most 64 bytes, without spaces or control characters")
            }
            TuningError::IpcMode(mode) => {
                format!("{mode:?}: the engine takes private, shareable (the same here) or host")
            }
            TuningError::UtsMode(mode) => {
                format!("{mode:?}: the engine takes host (or nothing: its own)")
            }
            TuningError::HostNamespace { key, why, .. } => format!("host: {key} {why}"),
            TuningError::PidMode(mode) => {
                format!("{mode:?}: the engine takes host (or nothing: its own)")
            }
            TuningError::PidHostUserns => USERNS_HOST.to_owned(),
            TuningError::NetSysctl { mode, .. } => format!(
                "network_mode {mode} gives no network namespace of its own: the setting would be another's"
            ),
        }
    }
}

impl std::fmt::Display for TuningError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key(), self.detail())
    }
}

impl std::error::Error for TuningError {}

/// The kernel's longest host or domain name (`__NEW_UTS_LEN`).
const UTS_NAME_MAX: usize = 64;

/// The checked settings of `req`, for a container with a user namespace of its own
/// or not (`userns`). A `shm_size` of 0 means the default, as in Docker.
pub fn tuning(req: &ContainerCreate, userns: bool) -> Result<Tuning, TuningError> {
    let conflict = |ns, key: &str, why| {
        Err(TuningError::HostNamespace {
            ns,
            key: key.to_owned(),
            why,
        })
    };
    let ipc_host = ipc_host(req.ipc_mode.as_deref())?;
    if ipc_host {
        let no = |key: &str, why| conflict("ipc", key, why);
        if userns {
            return no("userns", USERNS_HOST);
        }
        if req.shm_size.is_some_and(|s| s > 0) {
            return no("shm_size", "cannot be set: /dev/shm is the host's");
        }
        if let Some(key) = req.sysctls.keys().find(|k| is_ipc_sysctl(k)) {
            return no(key, "cannot be set: it would be the host's");
        }
    }
    if let Some(mode) = req
        .network_mode
        .as_deref()
        .filter(|m| *m == "host" || m.starts_with("container:"))
        && let Some(key) = req.sysctls.keys().find(|k| k.starts_with("net."))
    {
        return Err(TuningError::NetSysctl {
            key: key.clone(),
            mode: mode.to_owned(),
        });
    }
    let pid_host = pid_host(req.pid_mode.as_deref())?;
    if pid_host && userns {
        return Err(TuningError::PidHostUserns);
    }
    let uts_host = uts_host(req.uts_mode.as_deref())?;
    if uts_host {
        let names = ["kernel.hostname", "kernel.domainname"];
        if req.hostname.is_some() {
            return conflict("uts", "hostname", "cannot be set: the name is the host's");
        }
        if req.domainname.as_deref().is_some_and(|d| !d.is_empty()) {
            return conflict("uts", "domainname", "cannot be set: the name is the host's");
        }
        if let Some(key) = req.sysctls.keys().find(|k| names.contains(&k.as_str())) {
            return conflict("uts", key, "cannot be set: it would be the host's");
        }
    }
    Ok(Tuning {
        ipc_host,
        pid_host,
        uts_host,
        shm_size: req.shm_size.filter(|s| *s > 0),
        oom_score_adj: req.oom_score_adj.map(oom_score_adj).transpose()?,
        domainname: req
            .domainname
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(domainname)
            .transpose()?,
    })
}

/// Why a host namespace does not go with a user namespace of the container's own.
const USERNS_HOST: &str = "needs the host's user ids: not with a user namespace of its own (opt out of the engine's remap with userns host)";

/// Whether `mode` (compose's `pid`) shares the host's PID namespace.
pub fn pid_host(mode: Option<&str>) -> Result<bool, TuningError> {
    match mode {
        None | Some("" | "private") => Ok(false),
        Some("host") => Ok(true),
        Some(other) => Err(TuningError::PidMode(other.to_owned())),
    }
}

/// Whether `mode` (compose's `uts`) shares the host's UTS namespace (its host and
/// domain names).
pub fn uts_host(mode: Option<&str>) -> Result<bool, TuningError> {
    match mode {
        None | Some("" | "private") => Ok(false),
        Some("host") => Ok(true),
        Some(other) => Err(TuningError::UtsMode(other.to_owned())),
    }
}

/// Whether `mode` (compose's `ipc`) shares the host's IPC namespace; `private` and
/// `shareable` (another container cannot join it here anyway) give one of its own.
pub fn ipc_host(mode: Option<&str>) -> Result<bool, TuningError> {
    match mode {
        None | Some("" | "private" | "shareable") => Ok(false),
        Some("host") => Ok(true),
        Some(other) => Err(TuningError::IpcMode(other.to_owned())),
    }
}

/// `name` as the UTS namespace's domain name.
pub fn domainname(name: &str) -> Result<String, TuningError> {
    let bad =
        name.len() > UTS_NAME_MAX || name.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        return Err(TuningError::Domainname(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// `value` as the kernel's `oom_score_adj` (-1000: never killed for memory, 1000:
/// first).
pub fn oom_score_adj(value: i64) -> Result<i32, TuningError> {
    i32::try_from(value)
        .ok()
        .filter(|v| (-1000..=1000).contains(v))
        .ok_or(TuningError::OomScoreAdj(value))
}

/// Entry `index` of list `key` is one word of a resolv.conf line: not empty, no
/// white space, no control characters, no comment sign.
pub fn check_entry(key: &'static str, index: usize, value: &str) -> Result<(), TuningError> {
    let bad = value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#' || c == ';');
    if bad {
        return Err(TuningError::Entry {
            key,
            index,
            value: value.to_owned(),
            why: "an entry is one word: not empty, without spaces, newlines, # or ;",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_size_zero_is_the_default() {
        let req = |shm_size| ContainerCreate {
            shm_size,
            ..ContainerCreate::default()
        };
        assert_eq!(tuning(&req(Some(0)), false).unwrap().shm_size, None);
        assert_eq!(tuning(&req(None), false).unwrap().shm_size, None);
        assert_eq!(
            tuning(&req(Some(1 << 28)), false).unwrap().shm_size,
            Some(1 << 28)
        );
    }

    #[test]
    fn oom_score_adj_is_the_kernels_range() {
        for v in [-1000, -1, 0, 500, 1000] {
            assert_eq!(oom_score_adj(v), Ok(v as i32));
        }
        for v in [-1001, 1001, i64::MAX, i64::from(i32::MIN) - 1] {
            let e = oom_score_adj(v).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("oom_score_adj: {v} is out of range")),
                "{e}"
            );
        }
        let req = ContainerCreate {
            oom_score_adj: Some(2000),
            ..ContainerCreate::default()
        };
        assert_eq!(tuning(&req, false), Err(TuningError::OomScoreAdj(2000)));
    }

    #[test]
    fn a_domainname_fits_the_kernels_field() {
        assert_eq!(domainname("corp.example"), Ok("corp.example".into()));
        let long = "d".repeat(65);
        for bad in [long.as_str(), "a b", "a\nb"] {
            let e = domainname(bad).unwrap_err().to_string();
            assert!(e.starts_with("domainname: "), "{e}");
        }
        let empty = ContainerCreate {
            domainname: Some(String::new()),
            ..ContainerCreate::default()
        };
        assert_eq!(tuning(&empty, false).unwrap().domainname, None);
    }

    #[test]
    fn ipc_host_shares_the_hosts_namespace_and_takes_none_of_its_settings() {
        let host = |f: fn(&mut ContainerCreate)| {
            let mut req = ContainerCreate {
                ipc_mode: Some("host".into()),
                ..ContainerCreate::default()
            };
            f(&mut req);
            req
        };
        assert!(tuning(&host(|_| ()), false).unwrap().ipc_host);
        for mode in [None, Some("private"), Some("shareable")] {
            assert_eq!(ipc_host(mode), Ok(false));
        }
        let e = ipc_host(Some("container:db")).unwrap_err().to_string();
        assert!(e.starts_with("ipc: \"container:db\": "), "{e}");
        let e = tuning(&host(|_| ()), true).unwrap_err().to_string();
        assert!(e.starts_with("ipc: host: userns "), "{e}");
        let e = tuning(&host(|r| r.shm_size = Some(1 << 20)), false).unwrap_err();
        assert!(e.to_string().starts_with("ipc: host: shm_size "), "{e}");
        let sysctl = |r: &mut ContainerCreate| {
            r.sysctls.insert("kernel.shmmax".into(), "1".into());
        };
        let e = tuning(&host(sysctl), false).unwrap_err().to_string();
        assert!(e.starts_with("ipc: host: kernel.shmmax "), "{e}");
        let net = |r: &mut ContainerCreate| {
            r.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        };
        assert!(tuning(&host(net), false).is_ok());
    }

    #[test]
    fn pid_host_shares_the_hosts_namespace_without_a_user_namespace() {
        let req = ContainerCreate {
            pid_mode: Some("host".into()),
            ..ContainerCreate::default()
        };
        assert!(tuning(&req, false).unwrap().pid_host);
        assert!(!tuning(&ContainerCreate::default(), false).unwrap().pid_host);
        let e = tuning(&req, true).unwrap_err().to_string();
        assert!(e.starts_with("pid: needs the host's user ids"), "{e}");
        let e = pid_host(Some("service:db")).unwrap_err().to_string();
        assert!(e.starts_with("pid: \"service:db\": "), "{e}");
    }

    #[test]
    fn net_sysctls_need_a_network_namespace_of_its_own() {
        let req = |mode: &str| ContainerCreate {
            network_mode: Some(mode.into()),
            sysctls: [("net.ipv4.ip_forward".to_owned(), "0".to_owned())].into(),
            ..ContainerCreate::default()
        };
        for mode in ["host", "container:db"] {
            let e = tuning(&req(mode), false).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!(
                    "sysctls.net.ipv4.ip_forward: network_mode {mode} "
                )),
                "{e}"
            );
        }
        for mode in ["bridge", "none", "front"] {
            assert!(tuning(&req(mode), false).is_ok(), "{mode}");
        }
    }

    #[test]
    fn uts_host_shares_the_hosts_names_and_sets_none() {
        let host = |f: fn(&mut ContainerCreate)| {
            let mut req = ContainerCreate {
                uts_mode: Some("host".into()),
                ..ContainerCreate::default()
            };
            f(&mut req);
            tuning(&req, false)
        };
        assert!(host(|_| ()).unwrap().uts_host);
        let e = host(|r| r.hostname = Some("db".into())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("uts: host: hostname cannot be set"),
            "{e}"
        );
        let e = host(|r| r.domainname = Some("corp".into())).unwrap_err();
        assert!(e.to_string().starts_with("uts: host: domainname "), "{e}");
        let e = host(|r| {
            r.sysctls.insert("kernel.hostname".into(), "x".into());
        })
        .unwrap_err();
        assert!(
            e.to_string().starts_with("uts: host: kernel.hostname "),
            "{e}"
        );
        let e = uts_host(Some("container:db")).unwrap_err().to_string();
        assert!(e.starts_with("uts: \"container:db\": "), "{e}");
    }

    #[test]
    fn an_entry_is_one_word() {
        assert!(check_entry("dns_search", 0, "corp.example").is_ok());
        assert!(check_entry("dns_opt", 0, "ndots:2").is_ok());
        for bad in ["", "a b", "a\nnameserver 1.2.3.4", "x\t", "a#b", "a;b"] {
            let e = check_entry("dns_opt", 2, bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("dns_opt[2]: {bad:?}: ")), "{e}");
        }
    }
}
