//! Published ports: `-p [IP:][HOST[-END]:]CONTAINER[-END][/tcp|udp]` parsed into one
//! binding per port.

use std::net::Ipv4Addr;

/// One host port forwarded to one container port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortSpec {
    /// `None`: every host address.
    pub host_ip: Option<Ipv4Addr>,
    /// `None`: pick a free one.
    pub host_port: Option<u16>,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
}

fn range(s: &str, what: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("{what} port {p:?} is not a port number (1-65535)")),
            Ok(n) => Ok(n),
        }
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("{what} port range {s} ends before it starts"));
            }
            Ok((a, b))
        }
        None => {
            let p = port(s)?;
            Ok((p, p))
        }
    }
}

/// Parse one `-p` value.
pub fn parse(spec: &str) -> Result<Vec<PortSpec>, String> {
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, "tcp"),
        Some((r, "udp")) => (r, "udp"),
        Some((_, p)) => return Err(format!("protocol {p:?} is not tcp or udp")),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [ip, h, c] => (Some(*ip), (!h.is_empty()).then_some(*h), *c),
        _ => return Err("expected [IP:][HOST-PORT:]CONTAINER-PORT[/PROTOCOL]".into()),
    };
    let host_ip = match ip {
        None | Some("") | Some("0.0.0.0") => None,
        Some(a) => Some(
            a.parse::<Ipv4Addr>()
                .map_err(|_| format!("host address {a:?} is not an IPv4 address"))?,
        ),
    };
    let (c0, c1) = range(container, "container")?;
    let count = c1 - c0;
    let host = match host {
        None => None,
        Some(h) => {
            let (h0, h1) = range(h, "host")?;
            if h1 - h0 != count {
                return Err(format!(
                    "host range {h} and container range {container} differ in length"
                ));
            }
            Some(h0)
        }
    };
    Ok((0..=count)
        .map(|i| PortSpec {
            host_ip,
            host_port: host.map(|h| h + i),
            container_port: c0 + i,
            protocol,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = parse("8080:80").unwrap();
        assert_eq!(
            p,
            [PortSpec {
                host_ip: None,
                host_port: Some(8080),
                container_port: 80,
                protocol: "tcp"
            }]
        );
        let p = parse("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!(p[0].host_ip, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(p[0].protocol, "udp");
        let p = parse("9000-9002:7000-7002").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[2].host_port, p[2].container_port), (Some(9002), 7002));
        assert_eq!(parse("80").unwrap()[0].host_port, None);
        assert_eq!(parse("127.0.0.1::80").unwrap()[0].host_port, None);
    }

    #[test]
    fn errors_say_what() {
        assert!(parse("80/sctp").unwrap_err().contains("sctp"));
        assert!(parse("0:80").unwrap_err().contains("host port"));
        assert!(parse("9000-9001:80").unwrap_err().contains("differ"));
        assert!(parse("x:1:2").unwrap_err().contains("IPv4"));
        assert!(parse("1:2:3:4").unwrap_err().contains("expected"));
        assert!(parse("90-80").unwrap_err().contains("before"));
    }
}
