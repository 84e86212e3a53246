//! Parsers for the short syntaxes of the compose model: ports, volumes, devices,
//! extra hosts and shell command lines. Pure functions over text.

/// One port mapping from the short syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortPort {
    pub host_ip: Option<String>,
    pub published: Option<String>,
    pub target: u16,
    pub protocol: String,
}

fn port_number(text: &str, what: &str) -> Result<u16, String> {
    match text.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(format!("{what} {text:?} is not a port number (1-65535)")),
    }
}

/// `start-end` or a single port, as an inclusive range.
fn port_range(text: &str, what: &str) -> Result<(u16, u16), String> {
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port_number(a, what)?, port_number(b, what)?);
            if a > b {
                return Err(format!("{what} range {text:?} ends before it starts"));
            }
            Ok((a, b))
        }
        None => {
            let p = port_number(text, what)?;
            Ok((p, p))
        }
    }
}

/// Parse `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL]`.
pub fn parse_port(text: &str) -> Result<Vec<ShortPort>, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((s, p)) => (s, p.to_ascii_lowercase()),
        None => (text, "tcp".to_owned()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "unknown protocol {protocol:?} (use tcp, udp or sctp)"
        ));
    }
    let (host_ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let Some((ip, rest)) = stripped.split_once(']') else {
            return Err("an IPv6 host address must be closed with ']'".into());
        };
        let Some(rest) = rest.strip_prefix(':') else {
            return Err("expected ':' after the bracketed host address".into());
        };
        (Some(ip.to_owned()), rest)
    } else {
        (None, spec)
    };
    let parts: Vec<&str> = rest.rsplitn(3, ':').collect();
    let (container, published, ip) = match parts.as_slice() {
        [c] => (*c, None, None),
        [c, p] => (*c, Some(*p), None),
        [c, p, ip] => (*c, Some(*p), Some(*ip)),
        _ => return Err("empty port".into()),
    };
    if host_ip.is_some() && ip.is_some() {
        return Err("too many ':' separated parts".into());
    }
    let host_ip = host_ip.or_else(|| ip.filter(|s| !s.is_empty()).map(str::to_owned));
    if let Some(ip) = &host_ip
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        return Err(format!("host address {ip:?} is not an IP address"));
    }
    let published = published.filter(|p| !p.is_empty());
    let (c0, c1) = port_range(container, "container port")?;
    let published_range = published
        .map(|p| port_range(p, "published port"))
        .transpose()?;
    let mut out = Vec::new();
    match published_range {
        Some((p0, p1)) if c0 != c1 => {
            if p1 - p0 != c1 - c0 {
                return Err(format!(
                    "published range {} has {} ports but container range {container} has {}",
                    published.unwrap_or_default(),
                    p1 - p0 + 1,
                    c1 - c0 + 1
                ));
            }
            for i in 0..=(c1 - c0) {
                out.push(ShortPort {
                    host_ip: host_ip.clone(),
                    published: Some((p0 + i).to_string()),
                    target: c0 + i,
                    protocol: protocol.clone(),
                });
            }
        }
        _ => {
            for target in c0..=c1 {
                out.push(ShortPort {
                    host_ip: host_ip.clone(),
                    published: published.map(str::to_owned),
                    target,
                    protocol: protocol.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// A mount from the short syntax, before paths are resolved.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ShortVolume {
    /// `None` for an anonymous volume.
    pub source: Option<String>,
    pub target: String,
    pub bind: bool,
    pub read_only: bool,
    pub selinux: Option<String>,
    pub propagation: Option<String>,
    pub consistency: Option<String>,
    pub nocopy: bool,
}

/// `true` when a volume source names a host path rather than a volume.
pub fn is_path(source: &str) -> bool {
    source.starts_with('/')
        || source.starts_with('.')
        || source.starts_with('~')
        || is_windows_path(source)
}

/// `C:\...` or `\\server\...`.
pub fn is_windows_path(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\')
        || s.starts_with("\\\\")
}

/// Parse `[SOURCE:]TARGET[:OPTIONS]`.
pub fn parse_volume(text: &str) -> Result<ShortVolume, String> {
    if text.is_empty() {
        return Err("empty volume".into());
    }
    let mut parts: Vec<String> = Vec::new();
    let mut rest = text;
    if is_windows_path(rest) && rest.as_bytes()[1] == b':' {
        let idx = rest[2..].find(':').map(|i| i + 2).unwrap_or(rest.len());
        parts.push(rest[..idx].to_owned());
        rest = rest.get(idx + 1..).unwrap_or("");
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.extend(rest.split(':').map(str::to_owned));
    }
    let mut v = ShortVolume::default();
    let options = match parts.len() {
        1 => {
            v.target = parts.remove(0);
            None
        }
        2 => {
            v.source = Some(parts.remove(0));
            v.target = parts.remove(0);
            None
        }
        3 => {
            v.source = Some(parts.remove(0));
            v.target = parts.remove(0);
            Some(parts.remove(0))
        }
        _ => return Err("too many ':' separated parts (expected SOURCE:TARGET[:MODE])".into()),
    };
    if v.target.is_empty() {
        return Err("the mount target is empty".into());
    }
    if let Some(source) = &v.source {
        if source.is_empty() {
            return Err("the mount source is empty".into());
        }
        v.bind = is_path(source);
    }
    for opt in options.iter().flat_map(|o| o.split(',')) {
        match opt {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "z" | "Z" => v.selinux = Some(opt.to_owned()),
            "nocopy" => v.nocopy = true,
            "consistent" | "cached" | "delegated" => v.consistency = Some(opt.to_owned()),
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                v.propagation = Some(opt.to_owned())
            }
            other => {
                return Err(format!(
                    "unknown mount option {other:?} (use ro, rw, z, Z, nocopy, a propagation or a consistency)"
                ));
            }
        }
    }
    Ok(v)
}

/// Parse a device `HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]]` into (source, target, permissions).
pub fn parse_device(text: &str) -> Result<(String, String, String), String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (source, target, perms) = match parts.as_slice() {
        [s] => (*s, *s, "rwm"),
        [s, t] if t.chars().all(|c| "rwm".contains(c)) && !t.is_empty() && !t.starts_with('/') => {
            (*s, *s, *t)
        }
        [s, t] => (*s, *t, "rwm"),
        [s, t, p] => (*s, *t, *p),
        _ => return Err("expected HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]]".into()),
    };
    if source.is_empty() || target.is_empty() {
        return Err("device paths must not be empty".into());
    }
    if perms.is_empty() || !perms.chars().all(|c| "rwm".contains(c)) {
        return Err(format!(
            "device permissions {perms:?} must be made of r, w and m"
        ));
    }
    Ok((source.to_owned(), target.to_owned(), perms.to_owned()))
}

/// Parse an extra host `NAME:IP` or `NAME=IP` (IPv6 addresses may be bracketed).
pub fn parse_extra_host(text: &str) -> Result<(String, String), String> {
    let (host, ip) = match text.split_once('=') {
        Some(pair) => pair,
        None => text
            .split_once(':')
            .ok_or_else(|| format!("{text:?} is not NAME=IP or NAME:IP"))?,
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || ip.is_empty() {
        return Err(format!("{text:?} is not NAME=IP or NAME:IP"));
    }
    Ok((host.to_owned(), ip.to_owned()))
}

/// Split a command line into words as a POSIX shell would (quotes and backslashes;
/// no expansion).
pub fn split_shell(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => word.push('\\'),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(host_ip: Option<&str>, published: Option<&str>, target: u16, protocol: &str) -> ShortPort {
        ShortPort {
            host_ip: host_ip.map(str::to_owned),
            published: published.map(str::to_owned),
            target,
            protocol: protocol.to_owned(),
        }
    }

    #[test]
    fn ports_short_syntax() {
        assert_eq!(
            parse_port("3000").unwrap(),
            vec![p(None, None, 3000, "tcp")]
        );
        assert_eq!(parse_port("3000-3001").unwrap().len(), 2);
        assert_eq!(
            parse_port("8000:80").unwrap(),
            vec![p(None, Some("8000"), 80, "tcp")]
        );
        assert_eq!(
            parse_port("9090-9091:8080-8081").unwrap(),
            vec![
                p(None, Some("9090"), 8080, "tcp"),
                p(None, Some("9091"), 8081, "tcp")
            ]
        );
        assert_eq!(
            parse_port("127.0.0.1:8001:8001").unwrap(),
            vec![p(Some("127.0.0.1"), Some("8001"), 8001, "tcp")]
        );
        assert_eq!(
            parse_port("127.0.0.1::5000").unwrap(),
            vec![p(Some("127.0.0.1"), None, 5000, "tcp")]
        );
        assert_eq!(
            parse_port("6060:6060/udp").unwrap(),
            vec![p(None, Some("6060"), 6060, "udp")]
        );
        assert_eq!(
            parse_port("[::1]:6001:6001").unwrap(),
            vec![p(Some("::1"), Some("6001"), 6001, "tcp")]
        );
        assert_eq!(
            parse_port("8000-8010:80").unwrap(),
            vec![p(None, Some("8000-8010"), 80, "tcp")]
        );
    }

    #[test]
    fn bad_ports_say_why() {
        assert!(
            parse_port("80/http")
                .unwrap_err()
                .contains("unknown protocol")
        );
        assert!(
            parse_port("99999")
                .unwrap_err()
                .contains("not a port number")
        );
        assert!(
            parse_port("web:80:80")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(parse_port("1-3:1-2").unwrap_err().contains("has 3 ports"));
        assert!(parse_port("a:b:c:d").is_err());
        assert!(parse_port("9-1").unwrap_err().contains("ends before"));
    }

    #[test]
    fn volumes_short_syntax() {
        let v = parse_volume("./data:/data:ro,z").unwrap();
        assert!(v.bind && v.read_only);
        assert_eq!(v.selinux.as_deref(), Some("z"));
        let v = parse_volume("db:/var/lib/db").unwrap();
        assert!(!v.bind);
        assert_eq!(v.source.as_deref(), Some("db"));
        let v = parse_volume("/anon").unwrap();
        assert_eq!(v.source, None);
        let v = parse_volume("C:\\docker:/x").unwrap();
        assert!(v.bind);
        assert_eq!(v.source.as_deref(), Some("C:\\docker"));
        assert_eq!(parse_volume("relative").unwrap().target, "relative");
        assert!(
            parse_volume("a:/b:bogus")
                .unwrap_err()
                .contains("unknown mount option")
        );
        assert!(parse_volume("a:/b:ro:x").is_err());
    }

    #[test]
    fn devices_and_hosts() {
        assert_eq!(parse_device("/dev/fuse").unwrap().1, "/dev/fuse");
        assert_eq!(parse_device("/dev/a:/dev/b:r").unwrap().2, "r");
        assert_eq!(parse_device("/dev/a:rw").unwrap().2, "rw");
        assert!(parse_device("/dev/a:/dev/b:x").is_err());
        assert_eq!(
            parse_extra_host("db:10.0.0.2").unwrap(),
            ("db".into(), "10.0.0.2".into())
        );
        assert_eq!(
            parse_extra_host("v6=[::1]").unwrap(),
            ("v6".into(), "::1".into())
        );
        assert_eq!(
            parse_extra_host("v6:::1").unwrap(),
            ("v6".into(), "::1".into())
        );
        assert!(parse_extra_host("nohost").is_err());
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            split_shell("echo 'a b' \"c\\\"d\" e\\ f").unwrap(),
            ["echo", "a b", "c\"d", "e f"]
        );
        assert_eq!(split_shell("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_shell("x ''").unwrap(), ["x", ""]);
        assert!(split_shell("echo 'oops").is_err());
    }
}
