//! A DNS server of the user's in a task (coredns, dnsmasq, pihole): it binds
//! port 53 on every address, UDP and TCP, IPv4 and IPv6, while the task's own
//! lookups still go to the embedded DNS at 127.0.0.11:53 (which listens on other
//! ports; the `orch-dns` table in the task's namespace sends port 53 there).

use super::{address, container_nft, exec, leftovers, nft, outcome, perl_ready, perl_task};
use crate::cluster::eventually;
use crate::engine::{Agent, ok};

/// A tiny DNS server in the host's perl ([`perl_task`]). It binds 53 on 0.0.0.0 and
/// [::], UDP and TCP, says `listening`, then answers every A query with 10.53.53.53
/// (other types: no data) and every TCP connection with `pong`.
const SERVER: &str = r#"
use IO::Socket::IP; use IO::Select; use Socket qw(SOCK_STREAM);
my @l;
for my $h ("0.0.0.0", "::") {
  for my $p ("udp", "tcp") {
    my $s = IO::Socket::IP->new(LocalHost => $h, LocalPort => 53, Proto => $p, V6Only => 1,
      ($p eq "tcp" ? (Listen => 5, ReuseAddr => 1) : ())) or die "bind [$h]:53/$p: $@\n";
    push @l, $s;
  }
}
$| = 1; print "listening\n";
my $sel = IO::Select->new(@l);
while (my @r = $sel->can_read) {
  for my $s (@r) {
    if ($s->socktype == SOCK_STREAM) { my $c = $s->accept or next; print $c "pong\n"; close $c; next }
    my $peer = $s->recv(my $q, 512) or next;
    my ($id, $qd) = unpack("a2 x10 a*", $q);
    my $end = index($qd, "\0") + 5;
    my $an = unpack("n", substr($qd, $end - 4, 2)) == 1
      ? pack("n n n N n C4", 0xc00c, 1, 1, 60, 4, 10, 53, 53, 53) : "";
    $s->send($id . pack("n5", 0x8180, 1, $an ? 1 : 0, 0, 0) . substr($qd, 0, $end) . $an, 0, $peer);
  }
}
"#;

#[test]
fn a_task_serves_dns_on_port_53_and_still_resolves_names() {
    let mut a = Agent::start("net-dns53");
    if !perl_ready(&a) {
        return;
    }
    ok(&a.orch(&["network", "create", "lan"], None));
    let peer = [
        "--name",
        "peer",
        "--network",
        "lan",
        "busybox",
        "sleep",
        "600",
    ];
    ok(&a.orch(&[&["container", "run", "-d"][..], &peer].concat(), None));
    perl_task(&a, "dns", &["--network", "lan"], SERVER);
    eventually(15, "the task binds port 53", || {
        let (_, logs) = outcome(a.orch(&["container", "logs", "dns"], None));
        logs.contains("listening").then_some(()).ok_or(logs)
    });
    let (peer_ip, dns_ip) = (address(&a, "peer", "lan"), address(&a, "dns", "lan"));

    // The task's own lookups reach the embedded DNS, not its server on 0.0.0.0:53.
    let (fine, out) = exec(&a, "dns", "nslookup peer");
    assert!(fine && out.contains(&peer_ip), "{out}");
    assert!(
        !out.contains("10.53.53.53"),
        "the task's server answered: {out}"
    );

    // Another container reaches the task's server on port 53, UDP and TCP (by
    // name, through its own embedded DNS).
    let logs = || outcome(a.orch(&["container", "logs", "dns"], None)).1;
    let (fine, out) = exec(&a, "peer", &format!("nslookup probe.example {dns_ip}"));
    assert!(
        fine && out.contains("10.53.53.53"),
        "{out}\nserver: {}",
        logs()
    );
    let (fine, out) = exec(&a, "peer", "nc dns 53 </dev/null");
    assert!(fine && out.contains("pong"), "{out}\nserver: {}", logs());

    // The redirect lives in the task's namespace only.
    let tables = container_nft(&a, "dns", &["list", "tables"]);
    assert!(tables.contains("table ip orch-dns"), "{tables}");
    let host = nft(&a, &["list", "tables"]);
    assert!(!host.contains("orch-dns"), "on the host: {host}");

    ok(&a.orch(&["container", "rm", "-f", "dns", "peer"], None));
    ok(&a.orch(&["network", "rm", "lan"], None));
    a.stop();
    assert_eq!(leftovers(&a), Vec::<String>::new());
}
