//! (pure) A container's `/etc/resolv.conf`: the network's (the embedded resolver's
//! `nameserver 127.0.0.11`, or the host's) with the search domains and options asked
//! for (`--dns-search`, `--dns-option`; compose's `dns_search`, `dns_opt`), as Docker
//! writes it.

use super::tuning::{TuningError, check_entry};

/// `base` with `search` replacing its `search`/`domain` lines (`.` alone: none) and
/// `options` over its options: an option of the same name (`ndots` in `ndots:2`)
/// replaces the base's, the others are kept (the embedded resolver's `ndots:0`).
pub fn resolv_conf(
    base: &str,
    search: &[String],
    options: &[String],
) -> Result<String, TuningError> {
    for (i, s) in search.iter().enumerate() {
        check_entry("dns_search", i, s)?;
    }
    for (i, o) in options.iter().enumerate() {
        check_entry("dns_opt", i, o)?;
    }
    let name = |o: &str| o.split(':').next().unwrap_or_default().to_owned();
    let ours: Vec<String> = options.iter().map(|o| name(o)).collect();
    let mut kept_options: Vec<String> = Vec::new();
    let mut out = String::new();
    for line in base.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search" | "domain") if !search.is_empty() => {}
            Some("options") if !options.is_empty() => {
                kept_options.extend(words.filter(|o| !ours.contains(&name(o))).map(String::from));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if !search.is_empty() && search != ["."] {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        kept_options.extend(options.iter().cloned());
        out.push_str(&format!("options {}\n", kept_options.join(" ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMBEDDED: &str = "nameserver 127.0.0.11\noptions ndots:0\n";

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn search_and_options_join_the_resolvers_lines() {
        let text = resolv_conf(
            EMBEDDED,
            &v(&["corp.example", "example.com"]),
            &v(&["timeout:1", "rotate"]),
        )
        .unwrap();
        assert_eq!(
            text,
            "nameserver 127.0.0.11\nsearch corp.example example.com\noptions ndots:0 timeout:1 rotate\n"
        );
        let ndots = resolv_conf(EMBEDDED, &[], &v(&["ndots:2"])).unwrap();
        assert_eq!(ndots, "nameserver 127.0.0.11\noptions ndots:2\n");
        assert_eq!(resolv_conf(EMBEDDED, &[], &[]).unwrap(), EMBEDDED);
    }

    #[test]
    fn the_hosts_search_line_is_replaced_and_a_dot_clears_it() {
        let host = "# by dhcp\nnameserver 10.0.0.2\nsearch lan\ndomain lan\n";
        let text = resolv_conf(host, &v(&["corp"]), &[]).unwrap();
        assert_eq!(text, "# by dhcp\nnameserver 10.0.0.2\nsearch corp\n");
        let none = resolv_conf(host, &v(&["."]), &[]).unwrap();
        assert_eq!(none, "# by dhcp\nnameserver 10.0.0.2\n");
    }

    #[test]
    fn an_entry_that_would_write_another_line_is_refused_by_key_and_index() {
        let e = resolv_conf(EMBEDDED, &v(&["ok", "evil\nnameserver 6.6.6.6"]), &[]).unwrap_err();
        assert!(e.to_string().starts_with("dns_search[1]: "), "{e}");
        let e = resolv_conf(EMBEDDED, &[], &v(&["ndots 1"])).unwrap_err();
        assert!(
            e.to_string().starts_with("dns_opt[0]: \"ndots 1\": "),
            "{e}"
        );
    }
}
