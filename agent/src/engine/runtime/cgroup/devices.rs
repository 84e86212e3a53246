//! Devices (v1 `devices.deny` / `devices.allow`): Docker's default list, or everything
//! for `privileged`. (v2 needs an eBPF device program, not written yet: on v2 device
//! access is left to the mount namespace's /dev.)

use super::{Controller, DeviceAccess, Setting};

/// Docker's defaults: create any node (`m`), read and write only these.
pub const DEFAULT_ALLOW: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",    // null
    "c 1:5 rwm",    // zero
    "c 1:7 rwm",    // full
    "c 1:8 rwm",    // random
    "c 1:9 rwm",    // urandom
    "c 5:0 rwm",    // tty
    "c 5:1 rwm",    // console
    "c 5:2 rwm",    // ptmx
    "c 136:* rwm",  // pts
    "c 10:200 rwm", // tun
];

/// v1 settings: deny all then allow the list and `extra` (`c 10:229 rwm` rules of
/// devices passed in), or allow all.
pub fn v1(access: DeviceAccess, extra: &[String]) -> Vec<Setting> {
    let d = Controller::Devices;
    match access {
        DeviceAccess::All => vec![Setting::new(d, "devices.allow", "a")],
        DeviceAccess::Default => std::iter::once(Setting::new(d, "devices.deny", "a"))
            .chain(
                DEFAULT_ALLOW
                    .iter()
                    .copied()
                    .chain(extra.iter().map(String::as_str))
                    .map(|r| Setting::new(d, "devices.allow", r)),
            )
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        let s = v1(DeviceAccess::Default, &[]);
        assert_eq!((s[0].file, s[0].value.as_str()), ("devices.deny", "a"));
        assert_eq!(s.len(), 1 + DEFAULT_ALLOW.len());
        assert_eq!(v1(DeviceAccess::All, &[])[0].value, "a");
        let fuse = v1(DeviceAccess::Default, &["c 10:229 rwm".into()]);
        assert_eq!(fuse.last().map(|s| s.value.as_str()), Some("c 10:229 rwm"));
    }
}
