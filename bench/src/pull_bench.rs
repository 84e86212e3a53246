//! Pull throughput: orch's registry client against `skopeo copy` (Debian) fetching the
//! same image from the same local docker-registry in the same run. Both write the
//! blobs to a tmpfs (/dev/shm) and verify digests; neither unpacks. Prints MB/s of
//! each (best of the rounds) and the ratio.
//!
//! Usage: pull-bench [LAYERS] [MB_PER_LAYER] (default 4 x 50). Needs docker-registry
//! and skopeo (`apt-get install skopeo`).

use agent::engine::image::digest::Digest;
use agent::engine::image::manifest::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Platform};
use agent::engine::image::reference::Reference;
use agent::engine::image::registry::{ClientOptions, RegistryClient};
use agent::engine::image::store::ContentStore;
use agent::testing::registry::start_registry;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn put(store: &ContentStore, bytes: &[u8]) -> Result<Digest> {
    let d = Digest::of(bytes);
    store.ingest(&d, Some(bytes.len() as u64), &mut &bytes[..])?;
    Ok(d)
}

/// An image of `layers` incompressible layers of `mb` MB each (like compressed
/// layers are); returns the manifest digest and the total bytes.
fn make_image(store: &ContentStore, layers: usize, mb: usize) -> Result<(Digest, u64)> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut descs = Vec::new();
    let mut total = 0u64;
    for _ in 0..layers {
        let data: Vec<u8> = (0..mb << 20)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let d = put(store, &data)?;
        total += data.len() as u64;
        descs.push((d, data.len()));
    }
    let diff_ids: Vec<String> = descs.iter().map(|(d, _)| format!("\"{d}\"")).collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        diff_ids.join(",")
    );
    let config_d = put(store, config.as_bytes())?;
    let layer_json: Vec<String> = descs
        .iter()
        .map(|(d, n)| format!(r#"{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{d}","size":{n}}}"#))
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_d}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        layer_json.join(",")
    );
    Ok((put(store, manifest.as_bytes())?, total))
}

fn best(times: &[Duration]) -> Duration {
    times.iter().min().copied().unwrap_or_default()
}

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().context("arguments are numbers"))
        .collect::<Result<_>>()?;
    let layers = args.first().copied().unwrap_or(4);
    let mb = args.get(1).copied().unwrap_or(50);
    if Command::new("skopeo").arg("--version").output().is_err() {
        bail!("skopeo is not installed (apt-get install skopeo)");
    }
    let Some(reg) = start_registry("pull-bench") else {
        bail!("docker-registry is not installed (scripts/setup installs it)");
    };
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    };
    let scratch = Scratch(root.join(format!("orch-pull-bench-{}", std::process::id())));
    let source = ContentStore::open(&scratch.0.join("source"))?;
    let (manifest, total) = make_image(&source, layers, mb)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = RegistryClient::new(ClientOptions::default())?;
    let r: Reference = format!("{}/bench/img:1", reg.addr).parse()?;
    rt.block_on(client.push(&r, &manifest, &source, &[], &()))?;
    println!(
        "image: {layers} layers x {mb} MB = {:.0} MB, registry {}, destination {}",
        total as f64 / 1e6,
        reg.addr,
        root.display()
    );

    let (mut orch, mut skopeo) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let dest = scratch.0.join(format!("orch-{round}"));
        let store = ContentStore::open(&dest)?;
        let fresh = RegistryClient::new(ClientOptions::default())?;
        let t = Instant::now();
        rt.block_on(fresh.pull(&r, &store, &Platform::linux_amd64(), &()))?;
        orch.push(t.elapsed());
        std::fs::remove_dir_all(&dest)?;

        let dest = scratch.0.join(format!("skopeo-{round}"));
        let t = Instant::now();
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}/bench/img:1", reg.addr))
            .arg(format!("dir:{}", dest.display()))
            .output()?;
        skopeo.push(t.elapsed());
        if !out.status.success() {
            bail!(
                "skopeo copy failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::remove_dir_all(&dest)?;
    }
    let rate = |d: Duration| total as f64 / 1e6 / d.as_secs_f64();
    let (o, s) = (best(&orch), best(&skopeo));
    println!(
        "orch pull:   best {:.3} s = {:.0} MB/s",
        o.as_secs_f64(),
        rate(o)
    );
    println!(
        "skopeo copy: best {:.3} s = {:.0} MB/s",
        s.as_secs_f64(),
        rate(s)
    );
    println!(
        "ratio (orch / skopeo throughput): {:.2}x",
        rate(o) / rate(s)
    );
    Ok(())
}
