//! What a container runs, decided purely from the image's config, the user's options
//! and the image's `/etc/passwd` and `/etc/group`: the command line, environment,
//! working directory and user ids — Docker's rules, no lookups left for later.

use super::caps::{self, CapError, Capability};
use super::seccomp::Seccomp;
use crate::engine::image::manifest::RunConfig;
use serde::{Deserialize, Serialize};

/// The user's options that shape the process (`orch container run` flags).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessOptions {
    /// Replaces the image's ENTRYPOINT (an empty list clears it).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's CMD when not empty.
    pub cmd: Vec<String>,
    /// `KEY=VALUE` (or `KEY` alone to drop nothing and set empty) over the image's.
    pub env: Vec<String>,
    /// `name`, `uid`, `name:group`, `uid:gid`.
    pub user: Option<String>,
    pub workdir: Option<String>,
}

/// User and groups a process runs as.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The home directory from /etc/passwd (for `HOME`).
    pub home: String,
}

/// The process a container starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub ids: Ids,
}

/// Why a container's process cannot be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("no command: the image has no ENTRYPOINT or CMD and none was given")]
    NoCommand,
    #[error("user {user:?}: {why}")]
    User { user: String, why: String },
    #[error("working directory {0:?} must be an absolute path")]
    Workdir(String),
    #[error("cap_add/cap_drop: {0}")]
    Capability(CapError),
    #[error("group_add[{index}] {group:?}: {why}")]
    GroupAdd {
        index: usize,
        group: String,
        why: &'static str,
    },
}

/// The user's security options (`--cap-add`, `--cap-drop`, `--privileged`,
/// `--security-opt seccomp=unconfined`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    /// Names with or without `CAP_`, any case, or `ALL`.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub seccomp_unconfined: bool,
}

/// What init enforces: the final capability list, the seccomp profile, and whether
/// the container is privileged (/sys writable, no masked or read-only paths).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    pub capabilities: Vec<Capability>,
    pub seccomp: Seccomp,
    pub privileged: bool,
}

impl Default for Security {
    /// Docker's defaults: its capability set and seccomp profile.
    fn default() -> Security {
        let mut capabilities = caps::DEFAULT.to_vec();
        capabilities.sort();
        Security {
            capabilities,
            seccomp: Seccomp::Default,
            privileged: false,
        }
    }
}

/// Docker's rules: `privileged` means every capability and no seccomp; otherwise the
/// default set with `cap_add`/`cap_drop` ([`caps::resolve`]) and the default profile
/// unless unconfined.
pub fn security(opts: &SecurityOptions) -> Result<Security, SpecError> {
    let capabilities = caps::resolve(&opts.cap_add, &opts.cap_drop, opts.privileged)
        .map_err(SpecError::Capability)?;
    let seccomp = if opts.privileged || opts.seccomp_unconfined {
        Seccomp::Unconfined
    } else {
        Seccomp::Default
    };
    Ok(Security {
        capabilities,
        seccomp,
        privileged: opts.privileged,
    })
}

/// The default `PATH` when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One `name:x:id:...` line split at colons.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// Resolve `user` (`name`, `uid`, `name:group`, `uid:gid`) with the image's files.
pub fn resolve_user(user: &str, passwd: &str, group: &str) -> Result<Ids, SpecError> {
    let err = |why: String| SpecError::User {
        user: user.to_owned(),
        why,
    };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if u.is_empty() {
        return Err(err("empty user name".into()));
    }
    let found = entries(passwd)
        .find(|f| f.first() == Some(&u) || (u.parse::<u32>().is_ok() && f.get(2) == Some(&u)));
    let (uid, mut gid, home, name) = match (&found, u.parse::<u32>()) {
        (Some(f), _) => {
            let uid = f.get(2).and_then(|v| v.parse().ok());
            let gid = f.get(3).and_then(|v| v.parse().ok());
            let (Some(uid), Some(gid)) = (uid, gid) else {
                return Err(err("its /etc/passwd entry is malformed".into()));
            };
            (
                uid,
                gid,
                f.get(5).copied().unwrap_or("/").to_owned(),
                f[0].to_owned(),
            )
        }
        (None, Ok(uid)) => (uid, uid, "/".to_owned(), String::new()),
        (None, Err(_)) => return Err(err("no such user in the image's /etc/passwd".into())),
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => entries(group)
                .find(|f| f.first() == Some(&g))
                .and_then(|f| f.get(2).and_then(|v| v.parse().ok()))
                .ok_or_else(|| err(format!("no group {g:?} in the image's /etc/group")))?,
        };
    }
    let mut groups: Vec<u32> = if name.is_empty() {
        Vec::new()
    } else {
        entries(group)
            .filter(|f| {
                f.get(3)
                    .is_some_and(|m| m.split(',').any(|member| member == name))
            })
            .filter_map(|f| f.get(2).and_then(|v| v.parse().ok()))
            .collect()
    };
    if !groups.contains(&gid) {
        groups.insert(0, gid);
    }
    Ok(Ids {
        uid,
        gid,
        groups,
        home,
    })
}

/// The group id `entry` of `group_add` stands for without the image: a number, or
/// `None` for a name (looked up in the image's /etc/group by [`add_groups`]).
pub fn group_id(index: usize, entry: &str) -> Result<Option<u32>, SpecError> {
    let err = |why| SpecError::GroupAdd {
        index,
        group: entry.to_owned(),
        why,
    };
    if entry.is_empty() || entry.contains(|c: char| c.is_whitespace() || c == ':') {
        return Err(err(
            "a group is a name or a numeric id, without spaces or colons",
        ));
    }
    if entry.bytes().all(|b| b.is_ascii_digit()) {
        return entry
            .parse()
            .map(Some)
            .map_err(|_| err("a group id is at most 4294967295"));
    }
    Ok(None)
}

/// Add `group_add` (names from the image's /etc/group `group`, or numeric ids) to the
/// supplementary groups of `ids`, as Docker's `--group-add`.
pub fn add_groups(ids: &mut Ids, group_add: &[String], group: &str) -> Result<(), SpecError> {
    for (index, entry) in group_add.iter().enumerate() {
        let gid = match group_id(index, entry)? {
            Some(gid) => gid,
            None => entries(group)
                .find(|f| f.first() == Some(&entry.as_str()))
                .and_then(|f| f.get(2).and_then(|v| v.parse().ok()))
                .ok_or_else(|| SpecError::GroupAdd {
                    index,
                    group: entry.clone(),
                    why: "no such group in the image's /etc/group",
                })?,
        };
        if !ids.groups.contains(&gid) {
            ids.groups.push(gid);
        }
    }
    Ok(())
}

/// Docker's rules: ENTRYPOINT + CMD (a given entrypoint drops the image's CMD unless a
/// command is given too); environment = image's, then the options' by key, plus PATH
/// and HOME when missing; working dir = option, image, or `/`.
pub fn plan(
    image: &RunConfig,
    opts: &ProcessOptions,
    passwd: &str,
    group: &str,
) -> Result<ProcessPlan, SpecError> {
    let entrypoint = opts
        .entrypoint
        .clone()
        .unwrap_or_else(|| image.entrypoint.clone().unwrap_or_default());
    let cmd = if !opts.cmd.is_empty() {
        opts.cmd.clone()
    } else if opts.entrypoint.is_some() {
        Vec::new()
    } else {
        image.cmd.clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    let user = opts
        .user
        .clone()
        .or_else(|| image.user.clone())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "0".into());
    let ids = resolve_user(&user, passwd, group)?;
    let mut env: Vec<String> = Vec::new();
    let set = |env: &mut Vec<String>, kv: &str| {
        let key = kv.split_once('=').map_or(kv, |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(if kv.contains('=') {
            kv.to_owned()
        } else {
            format!("{kv}=")
        });
    };
    for kv in image.env.iter().flatten().chain(&opts.env) {
        set(&mut env, kv);
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", ids.home));
    }
    let cwd = opts
        .workdir
        .clone()
        .or_else(|| image.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(SpecError::Workdir(cwd));
    }
    Ok(ProcessPlan {
        args,
        env,
        cwd,
        ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\n";

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> RunConfig {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        RunConfig {
            entrypoint: entrypoint.map(v),
            cmd: cmd.map(v),
            env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
            ..RunConfig::default()
        }
    }

    #[test]
    fn entrypoint_and_cmd_follow_docker() {
        let img = image(Some(&["/entry"]), Some(&["default"]));
        let run = |o: ProcessOptions| plan(&img, &o, PASSWD, GROUP).unwrap().args;
        assert_eq!(run(ProcessOptions::default()), ["/entry", "default"]);
        let cmd = ProcessOptions {
            cmd: vec!["x".into()],
            ..Default::default()
        };
        assert_eq!(run(cmd), ["/entry", "x"]);
        let ep = ProcessOptions {
            entrypoint: Some(vec!["/other".into()]),
            ..Default::default()
        };
        assert_eq!(
            run(ep),
            ["/other"],
            "a new entrypoint drops the image's CMD"
        );
        let none = plan(
            &image(None, None),
            &ProcessOptions::default(),
            PASSWD,
            GROUP,
        );
        assert_eq!(none, Err(SpecError::NoCommand));
    }

    #[test]
    fn environment_merges_by_key() {
        let o = ProcessOptions {
            env: vec!["A=mine".into(), "B=2".into()],
            ..Default::default()
        };
        let p = plan(&image(None, Some(&["sh"])), &o, PASSWD, GROUP).unwrap();
        assert_eq!(p.env, ["PATH=/bin", "A=mine", "B=2", "HOME=/root"]);
        assert_eq!(p.cwd, "/");
    }

    #[test]
    fn security_follows_docker() {
        let d = security(&SecurityOptions::default()).unwrap();
        assert_eq!(d, Security::default());
        assert_eq!(caps::mask(&d.capabilities), 0xa80425fb);
        let drop = SecurityOptions {
            cap_drop: vec!["chown".into()],
            ..Default::default()
        };
        let s = security(&drop).unwrap();
        assert!(!s.capabilities.contains(&Capability::CHOWN));
        assert_eq!(s.seccomp, Seccomp::Default);
        let p = security(&SecurityOptions {
            privileged: true,
            ..drop
        })
        .unwrap();
        assert_eq!(p.capabilities, Capability::all());
        assert_eq!((p.seccomp, p.privileged), (Seccomp::Unconfined, true));
        let bad = SecurityOptions {
            cap_add: vec!["CAP_WIZARD".into()],
            ..Default::default()
        };
        assert_eq!(
            security(&bad).unwrap_err().to_string(),
            "cap_add/cap_drop: unknown capability \"CAP_WIZARD\""
        );
    }

    #[test]
    fn group_add_takes_names_from_the_image_and_numbers() {
        let mut ids = resolve_user("app", PASSWD, GROUP).unwrap();
        let add = ["staff", "4242", "app", "root"].map(String::from);
        add_groups(&mut ids, &add, GROUP).unwrap();
        assert_eq!(ids.groups, [1000, 50, 4242, 0]);
        let e = add_groups(&mut ids, &["1".into(), "wheel".into()], GROUP).unwrap_err();
        assert_eq!(
            e.to_string(),
            "group_add[1] \"wheel\": no such group in the image's /etc/group"
        );
        for bad in ["", "a b", "x:y", "99999999999"] {
            let e = group_id(3, bad).unwrap_err().to_string();
            assert!(e.starts_with("group_add[3] "), "{bad:?}: {e}");
        }
        assert_eq!(group_id(0, "0"), Ok(Some(0)));
        assert_eq!(group_id(0, "audio"), Ok(None));
    }

    #[test]
    fn users_by_name_id_and_group() {
        let ids = resolve_user("app", PASSWD, GROUP).unwrap();
        assert_eq!(
            (ids.uid, ids.gid, ids.groups.clone()),
            (1000, 1000, vec![1000, 50])
        );
        assert_eq!(ids.home, "/home/app");
        assert_eq!(resolve_user("app:staff", PASSWD, GROUP).unwrap().gid, 50);
        let n = resolve_user("4242:7", PASSWD, GROUP).unwrap();
        assert_eq!((n.uid, n.gid), (4242, 7));
        let e = resolve_user("nobody", PASSWD, GROUP)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nobody") && e.contains("/etc/passwd"), "{e}");
        let e = resolve_user("app:wheel", PASSWD, GROUP)
            .unwrap_err()
            .to_string();
        assert!(e.contains("wheel"), "{e}");
    }
}
