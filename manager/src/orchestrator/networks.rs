//! Which stack networks the cluster can make: every stack network is one of orch's
//! vxlan overlays (IPv4, unencrypted, default IPAM with an optional subnet and
//! gateway). A network asking for anything else is refused when the stack is
//! written, naming what it asked for, rather than made differently from what it says.

use api::stack::NetworkSpec;

/// Why the cluster cannot make network `spec` as declared (none: it can).
pub fn unsupported(spec: &NetworkSpec) -> Option<String> {
    if spec.external {
        return None;
    }
    if let Some(driver) = spec
        .driver
        .as_deref()
        .filter(|d| !matches!(*d, "overlay" | "bridge"))
    {
        return Some(format!(
            "driver {driver:?} is not supported: stack networks are orch's overlays (driver overlay, or bridge as on one host)"
        ));
    }
    let opts: Vec<&str> = spec.driver_opts.keys().map(String::as_str).collect();
    if !opts.is_empty() {
        return Some(format!(
            "driver_opts ({}) are not supported: orch's overlays take no options (and are not encrypted)",
            opts.join(", ")
        ));
    }
    if spec.enable_ipv6 == Some(true) {
        return Some("enable_ipv6 is not supported: orch's overlays are IPv4 only".into());
    }
    if spec.enable_ipv4 == Some(false) {
        return Some("enable_ipv4: false is not supported: orch's overlays are IPv4".into());
    }
    let ipam = spec.ipam.as_ref()?;
    if let Some(driver) = ipam.driver.as_deref().filter(|d| *d != "default") {
        return Some(format!(
            "ipam.driver {driver:?} is not supported: the managers allocate addresses"
        ));
    }
    if !ipam.options.is_empty() {
        return Some("ipam.options are not supported".into());
    }
    if ipam.config.len() > 1 {
        return Some("ipam.config: an overlay takes one pool (subnet, gateway)".into());
    }
    let pool = ipam.config.first()?;
    if pool.ip_range.is_some() {
        return Some(
            "ipam.config[0].ip_range is not supported: addresses come from the whole subnet".into(),
        );
    }
    if !pool.aux_addresses.is_empty() {
        return Some("ipam.config[0].aux_addresses are not supported".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::unsupported;
    use api::stack::{Ipam, IpamPool, NetworkSpec};

    #[test]
    fn overlays_as_declared_pass_anything_else_is_named() {
        let ok = [
            NetworkSpec::default(),
            NetworkSpec {
                driver: Some("overlay".into()),
                attachable: true,
                ipam: Some(Ipam {
                    config: vec![IpamPool {
                        subnet: Some("10.9.0.0/24".into()),
                        ..IpamPool::default()
                    }],
                    ..Ipam::default()
                }),
                ..NetworkSpec::default()
            },
            NetworkSpec {
                driver: Some("macvlan".into()),
                external: true,
                ..NetworkSpec::default()
            },
        ];
        for spec in ok {
            assert_eq!(unsupported(&spec), None, "{spec:?}");
        }
        let encrypted = NetworkSpec {
            driver: Some("overlay".into()),
            driver_opts: [("encrypted".to_owned(), "yes".to_owned())].into(),
            ..NetworkSpec::default()
        };
        let why = unsupported(&encrypted).unwrap();
        assert!(why.contains("driver_opts (encrypted)"), "{why}");
        let macvlan = NetworkSpec {
            driver: Some("macvlan".into()),
            ..NetworkSpec::default()
        };
        assert!(unsupported(&macvlan).unwrap().contains("\"macvlan\""));
        let v6 = NetworkSpec {
            enable_ipv6: Some(true),
            ..NetworkSpec::default()
        };
        assert!(unsupported(&v6).unwrap().starts_with("enable_ipv6"));
    }
}
