//! Links, addresses, routes and forwarding entries through rtnetlink (no `ip`
//! subprocesses). Each call runs on a thread inside the namespace it works on, with a
//! small runtime of its own, so callers stay synchronous.

use super::netns;
use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// A netlink operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {why}")]
pub struct LinkError {
    pub op: String,
    pub why: String,
}

fn fail(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let op = op.into();
    move |e| LinkError {
        op,
        why: match &e {
            rtnetlink::Error::NetlinkError(m) => m.to_io().to_string(),
            other => other.to_string(),
        },
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io().raw_os_error().map(i32::abs),
        _ => None,
    }
}

/// Run `f` with a netlink handle inside the namespace at `netns` (`None`: the
/// engine's own).
pub fn netlink<T, F, Fut>(netns: Option<&Path>, f: F) -> Result<T, LinkError>
where
    T: Send,
    F: FnOnce(Nl) -> Fut + Send,
    Fut: Future<Output = Result<T, LinkError>>,
{
    let ns = netns.map(|p| p.display().to_string()).unwrap_or_default();
    netns::run_in(netns, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LinkError {
                op: "start a netlink runtime".into(),
                why: e.to_string(),
            })?;
        rt.block_on(async move {
            let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| LinkError {
                op: "open a netlink socket".into(),
                why: e.to_string(),
            })?;
            let task = tokio::spawn(conn);
            let out = f(Nl(handle)).await;
            task.abort();
            out
        })
    })
    .map_err(|e| LinkError {
        op: format!("enter network namespace {ns}"),
        why: e.to_string(),
    })?
}

/// A netlink handle bound to one namespace.
#[derive(Clone)]
pub struct Nl(Handle);

/// A MAC address as bytes from `02:42:...` text.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!(
            "{text:?} is not a MAC address (like 02:42:ac:11:00:02)"
        ));
    }
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16)
            .map_err(|_| format!("{text:?} is not a MAC address (like 02:42:ac:11:00:02)"))?;
    }
    if mac[0] & 1 == 1 {
        return Err(format!("{text:?} is a multicast address"));
    }
    Ok(mac)
}

/// `02:42` and the four bytes of `ip`, as Docker makes them.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// `aa:bb:...` text of a MAC address.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Nl {
    /// The index of link `name`, if it exists.
    pub async fn index(&self, name: &str) -> Result<Option<u32>, LinkError> {
        let mut links = self.0.link().get().match_name(name.to_owned()).execute();
        match links.try_next().await {
            Ok(Some(m)) => Ok(Some(m.header.index)),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(fail(format!("look up link {name}"))(e)),
        }
    }

    async fn need(&self, name: &str) -> Result<u32, LinkError> {
        self.index(name).await?.ok_or_else(|| LinkError {
            op: format!("find link {name}"),
            why: "no such link".into(),
        })
    }

    /// Every link's name.
    pub async fn names(&self) -> Result<Vec<String>, LinkError> {
        let mut links = self.0.link().get().execute();
        let mut out = Vec::new();
        while let Some(m) = links.try_next().await.map_err(fail("list links"))? {
            for a in m.attributes {
                if let LinkAttribute::IfName(n) = a {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    /// Bring link `name` up.
    pub async fn up(&self, name: &str) -> Result<(), LinkError> {
        let index = self.need(name).await?;
        self.0
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(fail(format!("bring {name} up")))
    }

    /// Make bridge `name` (if missing) with `mtu`, give it `addr` (if any) and bring
    /// it up; its index.
    pub async fn bridge(
        &self,
        name: &str,
        mtu: u32,
        addr: Option<(Ipv4Addr, u8)>,
    ) -> Result<u32, LinkError> {
        let index = match self.index(name).await? {
            Some(i) => i,
            None => {
                self.0
                    .link()
                    .add(LinkBridge::new(name).mtu(mtu).build())
                    .execute()
                    .await
                    .map_err(fail(format!("create bridge {name}")))?;
                self.need(name).await?
            }
        };
        if let Some((ip, prefix)) = addr {
            match self
                .0
                .address()
                .add(index, IpAddr::V4(ip), prefix)
                .execute()
                .await
            {
                Err(e) if errno(&e) != Some(libc::EEXIST) => {
                    return Err(fail(format!("give {name} the address {ip}/{prefix}"))(e));
                }
                _ => {}
            }
        }
        self.up(name).await?;
        Ok(index)
    }

    /// Remove link `name` (a veth's peer goes with it); no error when it is gone.
    pub async fn delete(&self, name: &str) -> Result<(), LinkError> {
        let Some(index) = self.index(name).await? else {
            return Ok(());
        };
        match self.0.link().del(index).execute().await {
            Err(e) if errno(&e) != Some(libc::ENODEV) => {
                Err(fail(format!("remove link {name}"))(e))
            }
            _ => Ok(()),
        }
    }

    /// A veth pair `host` - `peer`: `host` joins `bridge` and comes up, `peer` moves
    /// into the namespace open as `netns_fd`.
    pub async fn veth_into(
        &self,
        host: &str,
        peer: &str,
        mtu: u32,
        bridge: &str,
        netns_fd: i32,
    ) -> Result<(), LinkError> {
        self.0
            .link()
            .add(LinkVeth::new(host, peer).mtu(mtu).build())
            .execute()
            .await
            .map_err(fail(format!("create veth pair {host}/{peer}")))?;
        let br = self.need(bridge).await?;
        let h = self.need(host).await?;
        self.0
            .link()
            .set(LinkUnspec::new_with_index(h).controller(br).up().build())
            .execute()
            .await
            .map_err(fail(format!("attach {host} to {bridge}")))?;
        let p = self.need(peer).await?;
        self.0
            .link()
            .set(LinkUnspec::new_with_index(p).setns_by_fd(netns_fd).build())
            .execute()
            .await
            .map_err(fail(format!("move {peer} into the container's namespace")))
    }

    /// Inside a container's namespace: rename `from` to `to`, set its MAC, MTU
    /// (a veth's peer does not take its pair's), address and state up; bring `lo`
    /// up; route by `gateway` when given.
    pub async fn configure(
        &self,
        from: &str,
        to: &str,
        mac: [u8; 6],
        mtu: u32,
        addr: (Ipv4Addr, u8),
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), LinkError> {
        let i = self.need(from).await?;
        self.0
            .link()
            .set(
                LinkUnspec::new_with_index(i)
                    .name(to.to_owned())
                    .address(mac.to_vec())
                    .mtu(mtu)
                    .build(),
            )
            .execute()
            .await
            .map_err(fail(format!("rename {from} to {to}")))?;
        self.0
            .address()
            .add(i, IpAddr::V4(addr.0), addr.1)
            .execute()
            .await
            .map_err(fail(format!("give {to} the address {}/{}", addr.0, addr.1)))?;
        self.up(to).await?;
        self.up("lo").await?;
        if let Some(gw) = gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build();
            match self.0.route().add(route).execute().await {
                Err(e) if errno(&e) != Some(libc::EEXIST) => {
                    return Err(fail(format!("route through {gw}"))(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A vxlan device for `vni` from `local` (learning off), made here so its UDP
    /// socket lives in this namespace, then moved into the namespace open as
    /// `netns_fd` under the name `to`.
    #[allow(clippy::too_many_arguments)]
    pub async fn vxlan_detached(
        &self,
        name: &str,
        vni: u32,
        local: Option<Ipv4Addr>,
        port: u16,
        mtu: u32,
        netns_fd: i32,
        to: &str,
    ) -> Result<(), LinkError> {
        // Proxy: the device answers ARP for remote endpoints from its neighbour
        // table, so no broadcast ever crosses the underlay.
        let mut b = LinkVxlan::new(name, vni)
            .port(port)
            .learning(false)
            .proxy(true)
            .mtu(mtu);
        if let Some(local) = local {
            b = b.local(local);
        }
        self.0
            .link()
            .add(b.build())
            .execute()
            .await
            .map_err(fail(format!("create vxlan {name} (vni {vni})")))?;
        let v = self.need(name).await?;
        self.0
            .link()
            .set(
                LinkUnspec::new_with_index(v)
                    .setns_by_fd(netns_fd)
                    .name(to.to_owned())
                    .build(),
            )
            .execute()
            .await
            .map_err(fail(format!(
                "move vxlan {name} into the overlay's namespace"
            )))
    }

    /// Put link `name` on `bridge` and bring it up.
    pub async fn attach_up(&self, name: &str, bridge: &str) -> Result<(), LinkError> {
        let br = self.need(bridge).await?;
        let v = self.need(name).await?;
        self.0
            .link()
            .set(LinkUnspec::new_with_index(v).controller(br).up().build())
            .execute()
            .await
            .map_err(fail(format!("attach {name} to {bridge}")))
    }

    /// Frames for `mac` leave `vxlan` towards `remote`; ARP for `ip` is answered as
    /// `mac` by the vxlan device (proxy mode).
    pub async fn add_peer(
        &self,
        vxlan: &str,
        mac: [u8; 6],
        ip: Ipv4Addr,
        remote: Ipv4Addr,
    ) -> Result<(), LinkError> {
        let v = self.need(vxlan).await?;
        let mut fdb = self.0.neighbours().add_bridge(v, &mac).replace();
        fdb = fdb.destination(IpAddr::V4(remote));
        fdb.message_mut().header.flags = rtnetlink::packet_route::neighbour::NeighbourFlags::Own;
        fdb.execute()
            .await
            .map_err(fail(format!("forward {} to {remote}", mac_text(&mac))))?;
        self.0
            .neighbours()
            .add(v, IpAddr::V4(ip))
            .link_layer_address(&mac)
            .replace()
            .execute()
            .await
            .map_err(fail(format!("neighbour {ip} at {}", mac_text(&mac))))
    }

    /// Undo [`Nl::add_peer`]; entries already gone are fine.
    pub async fn remove_peer(
        &self,
        vxlan: &str,
        bridge: &str,
        mac: [u8; 6],
        ip: Ipv4Addr,
    ) -> Result<(), LinkError> {
        use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
        let (Some(v), Some(b)) = (self.index(vxlan).await?, self.index(bridge).await?) else {
            return Ok(());
        };
        let mut neighbours = self.0.neighbours().get().execute();
        let mut doomed = Vec::new();
        while let Some(m) = neighbours
            .try_next()
            .await
            .map_err(fail("list neighbours"))?
        {
            let hit = m.attributes.iter().any(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                    (m.header.ifindex == v || m.header.ifindex == b) && a == &ip
                }
                NeighbourAttribute::LinkLayerAddress(l) => {
                    m.header.ifindex == v && l.as_slice() == mac
                }
                _ => false,
            });
            if hit {
                doomed.push(m);
            }
        }
        let mut entries = self
            .0
            .neighbours()
            .get()
            .set_address_family(rtnetlink::packet_route::AddressFamily::Bridge)
            .execute();
        while let Some(m) = entries
            .try_next()
            .await
            .map_err(fail("list forwarding entries"))?
        {
            let hit = m.header.ifindex == v
                && m.attributes.iter().any(
                    |a| matches!(a, NeighbourAttribute::LinkLayerAddress(l) if l.as_slice() == mac),
                );
            if hit {
                doomed.push(m);
            }
        }
        for m in doomed {
            match self.0.neighbours().del(m).execute().await {
                Err(e) if errno(&e) != Some(libc::ENOENT) => {
                    return Err(fail(format!("remove peer {ip}"))(e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
