//! Output for people and programs: aligned columns, JSON, sizes and ages.

use std::io::Write;
use std::time::{Duration, SystemTime};

/// Print `rows` under `headers` in columns separated by three spaces (docker style).
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i < last {
                let pad = widths[i] - c.chars().count() + 3;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push('\n');
        s
    };
    out.write_all(line(headers.to_vec()).as_bytes())?;
    for row in rows {
        out.write_all(line(row.iter().map(String::as_str).collect()).as_bytes())?;
    }
    Ok(())
}

/// Print `value` as indented JSON.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `1.5MB`, `312kB`, `12B` (decimal units, as docker prints sizes).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else if v < 10.0 {
        format!("{v:.2}{}", UNITS[u])
    } else if v < 100.0 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

/// `3 days ago` for an RFC 3339 time, relative to `now`.
pub fn age(rfc3339: Option<&str>, now: SystemTime) -> String {
    let Some(t) = rfc3339.and_then(agent::engine::runtime::container::parse_time) else {
        return "N/A".into();
    };
    let secs = now.duration_since(t).unwrap_or(Duration::ZERO).as_secs();
    let (n, unit) = match secs {
        0..60 => return "Less than a minute ago".into(),
        60..3600 => (secs / 60, "minute"),
        3600..86_400 => (secs / 3600, "hour"),
        86_400..604_800 => (secs / 86_400, "day"),
        604_800..2_592_000 => (secs / 604_800, "week"),
        2_592_000..31_536_000 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// Do `op` for every item, printing what it returns (or the error); exit status 1
/// when any failed.
pub async fn each<F, Fut, E>(items: &[String], op: F) -> anyhow::Result<std::process::ExitCode>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<String, E>>,
    E: std::fmt::Display,
{
    let mut failed = false;
    for item in items {
        match op(item.clone()).await {
            Ok(text) if text.is_empty() => {}
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("orch: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// An image reference as a table shows it: the cluster registry's host and Docker
/// Hub's `library/` dropped, a digest cut to 12 hex digits
/// (`orch.internal/library/busybox@sha256:282ba5f8…` is `busybox@sha256:282ba5f8eae8`).
pub fn image(reference: &str) -> String {
    let (name, digest) = match reference.split_once("@sha256:") {
        Some((name, hex)) => (name, Some(hex.get(..12).unwrap_or(hex))),
        None => (reference, None),
    };
    let name = name
        .strip_prefix("orch.internal/")
        .map(|n| n.strip_prefix("library/").unwrap_or(n))
        .unwrap_or(name);
    match digest {
        Some(hex) => format!("{name}@sha256:{hex}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod image_tests {
    #[test]
    fn cluster_references_are_shown_short() {
        let long = format!("orch.internal/library/busybox@sha256:{}", "a1".repeat(32));
        assert_eq!(super::image(&long), "busybox@sha256:a1a1a1a1a1a1");
        assert_eq!(super::image("orch.internal/team/app:v2"), "team/app:v2");
        assert_eq!(
            super::image("registry.example:5000/library/x:1"),
            "registry.example:5000/library/x:1"
        );
        assert_eq!(super::image("nginx"), "nginx");
    }
}
