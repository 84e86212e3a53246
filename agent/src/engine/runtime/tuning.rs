//! (pure) What a container asks for beyond the engine's defaults, checked and turned
//! into the [`Tuning`] init applies: the size of /dev/shm, the OOM score adjustment,
//! the domain name;
//! and the check of one
//! `dns_search`/`dns_opt` entry ([`check_entry`]), which [`super::resolv`] writes.

use super::init::Tuning;
use api::container::ContainerCreate;

/// Why a setting cannot be taken. Each names its key as compose spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TuningError {
    /// One entry of a list (`dns_search[1] "a b": ...`).
    #[error("{key}[{index}] {value:?}: {why}")]
    Entry {
        key: &'static str,
        index: usize,
        value: String,
        why: &'static str,
    },
    #[error("oom_score_adj {0}: out of range, the kernel takes -1000 to 1000")]
    OomScoreAdj(i64),
    #[error("domainname {0:?}: at most 64 bytes, without spaces or control characters")]
    Domainname(String),
}

/// The kernel's longest host or domain name (`__NEW_UTS_LEN`).
const UTS_NAME_MAX: usize = 64;

/// The checked settings of `req`. A `shm_size` of 0 means the default, as in Docker.
pub fn tuning(req: &ContainerCreate) -> Result<Tuning, TuningError> {
    Ok(Tuning {
        shm_size: req.shm_size.filter(|s| *s > 0),
        oom_score_adj: req.oom_score_adj.map(oom_score_adj).transpose()?,
        domainname: req
            .domainname
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(domainname)
            .transpose()?,
    })
}

/// `name` as the UTS namespace's domain name.
pub fn domainname(name: &str) -> Result<String, TuningError> {
    let bad =
        name.len() > UTS_NAME_MAX || name.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad {
        return Err(TuningError::Domainname(name.to_owned()));
    }
    Ok(name.to_owned())
}

/// `value` as the kernel's `oom_score_adj` (-1000: never killed for memory, 1000:
/// first).
pub fn oom_score_adj(value: i64) -> Result<i32, TuningError> {
    i32::try_from(value)
        .ok()
        .filter(|v| (-1000..=1000).contains(v))
        .ok_or(TuningError::OomScoreAdj(value))
}

/// Entry `index` of list `key` is one word of a resolv.conf line: not empty, no
/// white space, no control characters, no comment sign.
pub fn check_entry(key: &'static str, index: usize, value: &str) -> Result<(), TuningError> {
    let bad = value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#' || c == ';');
    if bad {
        return Err(TuningError::Entry {
            key,
            index,
            value: value.to_owned(),
            why: "an entry is one word: not empty, without spaces, newlines, # or ;",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shm_size_zero_is_the_default() {
        let req = |shm_size| ContainerCreate {
            shm_size,
            ..ContainerCreate::default()
        };
        assert_eq!(tuning(&req(Some(0))).unwrap().shm_size, None);
        assert_eq!(tuning(&req(None)).unwrap().shm_size, None);
        assert_eq!(tuning(&req(Some(1 << 28))).unwrap().shm_size, Some(1 << 28));
    }

    #[test]
    fn oom_score_adj_is_the_kernels_range() {
        for v in [-1000, -1, 0, 500, 1000] {
            assert_eq!(oom_score_adj(v), Ok(v as i32));
        }
        for v in [-1001, 1001, i64::MAX, i64::from(i32::MIN) - 1] {
            let e = oom_score_adj(v).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("oom_score_adj {v}: out of range")),
                "{e}"
            );
        }
        let req = ContainerCreate {
            oom_score_adj: Some(2000),
            ..ContainerCreate::default()
        };
        assert_eq!(tuning(&req), Err(TuningError::OomScoreAdj(2000)));
    }

    #[test]
    fn a_domainname_fits_the_kernels_field() {
        assert_eq!(domainname("corp.example"), Ok("corp.example".into()));
        let long = "d".repeat(65);
        for bad in [long.as_str(), "a b", "a\nb"] {
            let e = domainname(bad).unwrap_err().to_string();
            assert!(e.starts_with("domainname "), "{e}");
        }
        let empty = ContainerCreate {
            domainname: Some(String::new()),
            ..ContainerCreate::default()
        };
        assert_eq!(tuning(&empty).unwrap().domainname, None);
    }

    #[test]
    fn an_entry_is_one_word() {
        assert!(check_entry("dns_search", 0, "corp.example").is_ok());
        assert!(check_entry("dns_opt", 0, "ndots:2").is_ok());
        for bad in ["", "a b", "a\nnameserver 1.2.3.4", "x\t", "a#b", "a;b"] {
            let e = check_entry("dns_opt", 2, bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("dns_opt[2] {bad:?}: ")), "{e}");
        }
    }
}
