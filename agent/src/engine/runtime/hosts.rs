//! A container's `/etc/hosts` (pure): localhost, the container's own addresses under
//! its hostname, and the extra entries asked for (`--add-host`, compose's
//! `extra_hosts`), where the address `host-gateway` stands for the engine's default
//! bridge gateway — the host as the container reaches it, as in Docker.

/// The address in an extra entry that stands for the host.
pub const HOST_GATEWAY: &str = "host-gateway";

/// Why an extra entry cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("extra host {entry:?}: {why}")]
pub struct HostsError {
    pub entry: String,
    pub why: String,
}

/// The text of `/etc/hosts`: `own` lines (`ADDRESS\tHOSTNAME`, the container's
/// addresses; none: `127.0.1.1` names it), then each `extra` entry `NAME:ADDRESS`
/// (`NAME=ADDRESS` too; an IPv6 address may be in brackets). `gateway` is the address
/// `host-gateway` stands for.
pub fn hosts_file(
    hostname: &str,
    own: &[String],
    extra: &[String],
    gateway: Option<&str>,
) -> Result<String, HostsError> {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if own.is_empty() {
        text.push_str(&format!("127.0.1.1\t{hostname}\n"));
    }
    for line in own {
        text.push_str(line);
        text.push('\n');
    }
    for entry in extra {
        let bad = |why: &str| HostsError {
            entry: entry.clone(),
            why: why.to_owned(),
        };
        let (name, address) = entry
            .split_once([':', '='])
            .ok_or_else(|| bad("expected NAME:ADDRESS"))?;
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '#') {
            return Err(bad("the name is empty or holds blanks or #"));
        }
        let address = address.trim_start_matches('[').trim_end_matches(']');
        let address = if address == HOST_GATEWAY {
            gateway.ok_or_else(|| bad("the engine's default bridge has no gateway"))?
        } else {
            address
        };
        address
            .parse::<std::net::IpAddr>()
            .map_err(|_| bad("the address is not an IP address (or host-gateway)"))?;
        text.push_str(&format!("{address}\t{name}\n"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::hosts_file;

    #[test]
    fn own_addresses_then_extra_entries_with_the_host_gateway() {
        let own = ["10.0.3.7\tweb".to_owned()];
        let extra = [
            "db.local:10.1.2.3".to_owned(),
            "host.docker.internal:host-gateway".to_owned(),
            "v6=[::1]".to_owned(),
        ];
        let text = hosts_file("web", &own, &extra, Some("172.17.0.1")).unwrap();
        assert_eq!(
            text,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.3.7\tweb\n\
             10.1.2.3\tdb.local\n172.17.0.1\thost.docker.internal\n::1\tv6\n"
        );
        let alone = hosts_file("box", &[], &[], None).unwrap();
        assert!(alone.ends_with("127.0.1.1\tbox\n"), "{alone}");
        for bad in ["nocolon", ":1.2.3.4", "a:not-an-ip", "a b:1.2.3.4"] {
            assert!(
                hosts_file("x", &[], &[bad.to_owned()], None).is_err(),
                "{bad}"
            );
        }
        let e = hosts_file("x", &[], &["h:host-gateway".to_owned()], None).unwrap_err();
        assert!(e.to_string().contains("no gateway"), "{e}");
    }
}
