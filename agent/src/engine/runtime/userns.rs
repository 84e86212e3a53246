//! User namespaces (`--uidmap 0:100000:65536`, `--gidmap ...`): the id maps, parsed
//! and checked purely ([`parse`]); writing them for a cloned init ([`write_maps`]);
//! and the container's root file system as an overlay of **idmapped** layers
//! ([`idmapped_overlay`]). Each image layer and the container's own directory (its
//! upper and work dirs) are cloned as detached mounts idmapped into the container's
//! user namespace, so the mapped root sees the image's root-owned files as its own:
//! no layer is copied or chowned per map (Docker's userns-remap keeps a chowned copy
//! of every layer per remap). The upper dir stores the container's own ids on disk;
//! volumes and bind mounts are not idmapped, so what the container writes there is
//! owned by the mapped host ids, as with Docker.

use crate::engine::image::snapshot::MountSpec;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `inside..inside+count` in the container is `outside..outside+count` on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The id maps of a container's user namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNs {
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
}

/// Why a user namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("{flag} {value:?}: {why}")]
    Invalid {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error("{op} {what}: {source}")]
    Sys {
        op: &'static str,
        what: String,
        source: io::Error,
    },
}

/// The kernel takes at most this many lines per map.
const MAX_LINES: usize = 340;

fn parse_one(flag: &'static str, text: &str) -> Result<IdMap, UsernsError> {
    let bad = |why: &str| UsernsError::Invalid {
        flag,
        value: text.to_owned(),
        why: why.to_owned(),
    };
    let parts: Vec<&str> = text.split(':').collect();
    let [inside, outside, count] = parts[..] else {
        return Err(bad("use CONTAINER_ID:HOST_ID:COUNT, like 0:100000:65536"));
    };
    let num = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| bad(&format!("{s:?} is not a user or group id")))
    };
    let m = IdMap {
        inside: num(inside)?,
        outside: num(outside)?,
        count: num(count)?,
    };
    if m.count == 0 {
        return Err(bad("the count must be at least 1"));
    }
    if m.inside.checked_add(m.count - 1).is_none() || m.outside.checked_add(m.count - 1).is_none() {
        return Err(bad("the range goes past the largest id (4294967295)"));
    }
    Ok(m)
}

fn overlap(a: u32, b: u32, n: u32, m: u32) -> bool {
    let (a, b, n, m) = (a as u64, b as u64, n as u64, m as u64);
    a < b + m && b < a + n
}

fn parse_map(flag: &'static str, texts: &[String]) -> Result<Vec<IdMap>, UsernsError> {
    let maps = texts
        .iter()
        .map(|t| parse_one(flag, t))
        .collect::<Result<Vec<_>, _>>()?;
    let all = texts.join(" ");
    let bad = |why: String| UsernsError::Invalid {
        flag,
        value: all.clone(),
        why,
    };
    if maps.len() > MAX_LINES {
        return Err(bad(format!("at most {MAX_LINES} ranges")));
    }
    for (i, a) in maps.iter().enumerate() {
        for b in &maps[i + 1..] {
            if overlap(a.inside, b.inside, a.count, b.count) {
                return Err(bad("two ranges overlap in the container".into()));
            }
            if overlap(a.outside, b.outside, a.count, b.count) {
                return Err(bad("two ranges overlap on the host".into()));
            }
        }
    }
    if !maps.iter().any(|m| m.inside == 0) {
        return Err(bad(
            "it must map id 0 (the container's root sets the container up)".into(),
        ));
    }
    Ok(maps)
}

/// The user namespace `uidmap` and `gidmap` ask for (`gidmap` defaults to
/// `uidmap`); `None` when both are empty (pure).
pub fn parse(uidmap: &[String], gidmap: &[String]) -> Result<Option<UserNs>, UsernsError> {
    if uidmap.is_empty() {
        if !gidmap.is_empty() {
            return Err(UsernsError::Invalid {
                flag: "--gidmap",
                value: gidmap.join(" "),
                why: "it needs --uidmap too".into(),
            });
        }
        return Ok(None);
    }
    let uid_map = parse_map("--uidmap", uidmap)?;
    let gid_map = if gidmap.is_empty() {
        uid_map.clone()
    } else {
        parse_map("--gidmap", gidmap)?
    };
    Ok(Some(UserNs { uid_map, gid_map }))
}

/// The engine-wide map of `orch agent --userns-remap VALUE` (Docker's daemon
/// option): `CONTAINER:HOST:COUNT`, or a user name whose first subordinate ranges in
/// `subuid` and `subgid` (the texts of /etc/subuid and /etc/subgid) map ids from 0
/// (pure).
pub fn remap(value: &str, subuid: &str, subgid: &str) -> Result<UserNs, UsernsError> {
    if value.contains(':') {
        let maps = [value.to_owned()];
        return parse(&maps, &[])?.ok_or_else(|| UsernsError::Invalid {
            flag: "--userns-remap",
            value: value.to_owned(),
            why: "no map".into(),
        });
    }
    let range = |file: &'static str, text: &str| {
        text.lines()
            .filter_map(|l| {
                let mut f = l.trim().split(':');
                let (name, start, count) = (f.next()?, f.next()?, f.next()?);
                (name == value).then(|| format!("0:{start}:{count}"))
            })
            .next()
            .ok_or_else(|| UsernsError::Invalid {
                flag: "--userns-remap",
                value: value.to_owned(),
                why: format!("{file} has no range for this user"),
            })
    };
    let (uids, gids) = (range("/etc/subuid", subuid)?, range("/etc/subgid", subgid)?);
    parse(&[uids], &[gids])?.ok_or_else(|| UsernsError::Invalid {
        flag: "--userns-remap",
        value: value.to_owned(),
        why: "no map".into(),
    })
}

/// The user namespace of a container: its own maps, else none with `mode` `host`,
/// else the engine's remap (pure).
pub fn for_container(
    uidmap: &[String],
    gidmap: &[String],
    mode: Option<&str>,
    remap: Option<&UserNs>,
) -> Result<Option<UserNs>, UsernsError> {
    match mode {
        None => {}
        Some("host") if uidmap.is_empty() && gidmap.is_empty() => return Ok(None),
        Some(m) => {
            return Err(UsernsError::Invalid {
                flag: "--userns",
                value: m.to_owned(),
                why: if m == "host" {
                    "host and --uidmap/--gidmap exclude each other".into()
                } else {
                    "the only mode is host (the engine's --userns-remap decides the rest)".into()
                },
            });
        }
    }
    match parse(uidmap, gidmap)? {
        Some(ns) => Ok(Some(ns)),
        None => Ok(remap.cloned()),
    }
}

impl UserNs {
    /// The host id of container id `id` in `map`, if mapped.
    pub fn host_id(map: &[IdMap], id: u32) -> Option<u32> {
        map.iter()
            .find(|m| id >= m.inside && id - m.inside < m.count)
            .map(|m| m.outside + (id - m.inside))
    }

    /// The text of `/proc/PID/uid_map` or `gid_map` for `map`.
    pub fn map_text(map: &[IdMap]) -> String {
        map.iter()
            .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
            .collect()
    }
}

fn sys_err(op: &'static str, what: impl std::fmt::Display) -> UsernsError {
    UsernsError::Sys {
        op,
        what: what.to_string(),
        source: io::Error::last_os_error(),
    }
}

/// Write the maps of the user namespace of `pid` (a cloned init waiting for its go).
pub fn write_maps(pid: libc::pid_t, ns: &UserNs) -> Result<(), UsernsError> {
    for (file, map) in [("uid_map", &ns.uid_map), ("gid_map", &ns.gid_map)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, UserNs::map_text(map)).map_err(|source| UsernsError::Sys {
            op: "write",
            what: path,
            source,
        })?;
    }
    Ok(())
}

// The new mount API (linux/mount.h), declared here to not depend on libc's coverage.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FD: libc::c_uint = 5;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
/// `move_mount` flag: the source is the fd itself.
pub const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| CString::from(c"?"))
}

fn owned(
    ret: libc::c_long,
    op: &'static str,
    what: impl std::fmt::Display,
) -> Result<OwnedFd, UsernsError> {
    if ret < 0 {
        return Err(sys_err(op, what));
    }
    // SAFETY: a fresh fd returned by the kernel, owned from here on.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// A detached copy of the mount at `path`, idmapped into the user namespace `userns`.
fn idmapped(path: &Path, userns: &OwnedFd) -> Result<OwnedFd, UsernsError> {
    let c = cstr(path);
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: open_tree with a NUL-terminated path.
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    let tree = owned(tree, "open_tree", path.display())?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr on our detached tree with a live, sized mount_attr.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(sys_err("idmap (mount_setattr)", path.display()));
    }
    Ok(tree)
}

fn fsconfig_fd(
    fs: &OwnedFd,
    key: &'static std::ffi::CStr,
    fd: &OwnedFd,
) -> Result<(), UsernsError> {
    // SAFETY: fsconfig on our fs context with a NUL-terminated key and an fd we hold.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FD,
            key.as_ptr(),
            std::ptr::null::<libc::c_void>(),
            fd.as_raw_fd(),
        )
    };
    if r != 0 {
        return Err(sys_err("configure the overlay's", key.to_string_lossy()));
    }
    Ok(())
}

/// Run `f` with the file system ids `uid`:`gid` and every permitted capability
/// effective (changing the fs ids drops the file capabilities), then restore both.
fn as_fs_owner<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> T {
    // SAFETY: per-thread fs id changes, undone below.
    let (old_uid, old_gid) = unsafe { (libc::setfsuid(uid), libc::setfsgid(gid)) };
    raise_effective();
    let out = f();
    // SAFETY: as above.
    unsafe {
        libc::setfsgid(old_gid as u32);
        libc::setfsuid(old_uid as u32);
    }
    out
}

fn raise_effective() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) == 0 {
            for w in &mut d {
                w.effective = w.permitted;
            }
            libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr());
        }
    }
}

/// The layers of `overlay` (`lowerdir=a:b`, `upperdir=`, `workdir=`).
fn layers(overlay: &MountSpec) -> Option<(Vec<PathBuf>, PathBuf, PathBuf)> {
    let opt = |key: &str| {
        overlay
            .options
            .iter()
            .find_map(|o| o.strip_prefix(key))
            .map(str::to_owned)
    };
    let lowers = opt("lowerdir=")?.split(':').map(PathBuf::from).collect();
    Some((lowers, opt("upperdir=")?.into(), opt("workdir=")?.into()))
}

/// The container's root file system: `overlay` made of layers idmapped into the user
/// namespace of `pid`, as a detached mount for init to attach (`move_mount`). The
/// overlay is created with the fs ids of the container's root (`root_uid`:`root_gid`
/// on the host), as overlayfs does its own work on the upper dir with its creator's
/// ids.
pub fn idmapped_overlay(
    pid: libc::pid_t,
    overlay: &MountSpec,
    root_uid: u32,
    root_gid: u32,
) -> Result<OwnedFd, UsernsError> {
    let (lowers, upper, work) = layers(overlay).ok_or_else(|| UsernsError::Invalid {
        flag: "overlay",
        value: overlay.options.join(","),
        why: "it lacks lowerdir, upperdir or workdir".into(),
    })?;
    let dir = upper.parent().filter(|d| work.parent() == Some(*d));
    let (Some(dir), Some(up_name), Some(work_name)) = (dir, upper.file_name(), work.file_name())
    else {
        return Err(UsernsError::Invalid {
            flag: "overlay",
            value: overlay.options.join(","),
            why: "upperdir and workdir must share a directory".into(),
        });
    };
    let ns_path = format!("/proc/{pid}/ns/user");
    let userns = std::fs::File::open(&ns_path).map_err(|source| UsernsError::Sys {
        op: "open",
        what: ns_path,
        source,
    })?;
    let userns = OwnedFd::from(userns);
    let lower_fds = lowers
        .iter()
        .map(|l| idmapped(l, &userns))
        .collect::<Result<Vec<_>, _>>()?;
    let dir_fd = idmapped(dir, &userns)?;
    let sub = |name: &std::ffi::OsStr| {
        let c = CString::new(name.as_bytes()).unwrap_or_else(|_| CString::from(c"?"));
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: openat below our detached tree with a NUL-terminated name.
        let fd = unsafe { libc::openat(dir_fd.as_raw_fd(), c.as_ptr(), flags) };
        owned(fd as libc::c_long, "open", dir.join(name).display())
    };
    let (up_fd, work_fd) = (sub(up_name)?, sub(work_name)?);
    // SAFETY: fsopen with a NUL-terminated file system name.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
    let fs = owned(fs, "fsopen", "overlay")?;
    for l in &lower_fds {
        fsconfig_fd(&fs, c"lowerdir+", l)?;
    }
    fsconfig_fd(&fs, c"upperdir", &up_fd)?;
    fsconfig_fd(&fs, c"workdir", &work_fd)?;
    let created = as_fs_owner(root_uid, root_gid, || {
        // SAFETY: fsconfig create on our configured context.
        unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            )
        }
    });
    if created != 0 {
        return Err(sys_err("create the idmapped overlay of", dir.display()));
    }
    // SAFETY: fsmount of our created context.
    let m = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    owned(m, "mount (fsmount) the overlay of", dir.display())
}

/// Attach the detached mount `tree` on `target` (init, inside the container's mount
/// namespace).
pub fn attach(tree: &OwnedFd, target: &Path) -> Result<(), UsernsError> {
    let c = cstr(target);
    // SAFETY: move_mount of a detached tree we hold onto a NUL-terminated path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(sys_err("attach the root file system on", target.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn maps_parse_and_gid_defaults_to_uid() {
        let ns = parse(&s(&["0:100000:65536"]), &[]).unwrap().unwrap();
        let m = IdMap {
            inside: 0,
            outside: 100000,
            count: 65536,
        };
        assert_eq!(ns.uid_map, vec![m]);
        assert_eq!(ns.gid_map, vec![m]);
        assert_eq!(UserNs::map_text(&ns.uid_map), "0 100000 65536\n");
        assert_eq!(UserNs::host_id(&ns.uid_map, 1000), Some(101000));
        assert_eq!(UserNs::host_id(&ns.uid_map, 65536), None);
        assert_eq!(parse(&[], &[]).unwrap(), None);
        let ns = parse(&s(&["0:1000:1", "1:100000:999"]), &s(&["0:2000:10"])).unwrap();
        assert_eq!(ns.unwrap().gid_map[0].outside, 2000);
    }

    #[test]
    fn remap_by_map_or_subordinate_ranges_and_modes() {
        let subuid = "alice:200000:1000\ndockremap:100000:65536\n";
        let subgid = "dockremap:300000:65536\n";
        let ns = remap("dockremap", subuid, subgid).unwrap();
        assert_eq!(UserNs::map_text(&ns.uid_map), "0 100000 65536\n");
        assert_eq!(UserNs::map_text(&ns.gid_map), "0 300000 65536\n");
        let e = remap("alice", subuid, subgid).unwrap_err().to_string();
        assert_eq!(
            e,
            "--userns-remap \"alice\": /etc/subgid has no range for this user"
        );
        let by_map = remap("0:100000:65536", "", "").unwrap();
        assert_eq!(by_map, ns_of("0:100000:65536"));
        let engine = Some(&by_map);
        assert_eq!(
            for_container(&[], &[], None, engine).unwrap(),
            Some(by_map.clone())
        );
        assert_eq!(for_container(&[], &[], Some("host"), engine).unwrap(), None);
        let own = s(&["0:500000:10"]);
        assert_eq!(
            for_container(&own, &[], None, engine).unwrap(),
            Some(ns_of("0:500000:10"))
        );
        for (mode, needle) in [("private", "the only mode is host"), ("host", "exclude")] {
            let e = for_container(&own, &[], Some(mode), None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    fn ns_of(map: &str) -> UserNs {
        parse(&s(&[map]), &[]).unwrap().unwrap()
    }

    #[test]
    fn bad_maps_name_flag_value_and_why() {
        for (uid, gid, needle) in [
            (&["0:100000"][..], &[][..], "CONTAINER_ID:HOST_ID:COUNT"),
            (&["0:x:1"], &[], "\"x\" is not a user or group id"),
            (&["0:100000:0"], &[], "at least 1"),
            (&["0:4294967295:2"], &[], "largest id"),
            (&["1:100000:10"], &[], "must map id 0"),
            (
                &["0:100000:10", "5:200000:10"],
                &[],
                "overlap in the container",
            ),
            (&["0:100000:10", "10:100005:10"], &[], "overlap on the host"),
            (&[], &["0:1:1"], "needs --uidmap"),
            (&["0:1:1"], &["0:1"], "--gidmap"),
        ] {
            let e = parse(&s(uid), &s(gid)).unwrap_err().to_string();
            assert!(e.contains(needle), "{uid:?} {gid:?}: {e}");
        }
    }
}
