//! Layer unpack throughput: orch's contained unpacker against GNU tar extracting the
//! same ~200 MB layer in the same run. Prints MB/s of each and the ratio.
//!
//! Usage: unpack-bench [SIZE_MB] (default 200). Needs a few hundred MB in $TMPDIR.

use anyhow::{Context, Result, bail};
use std::fs;
use std::io::BufWriter;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A deterministic tree: many small files (configs, scripts) and some large ones
/// (libraries), in nested directories, with symlinks, as real images have.
fn make_layer(path: &Path, target_bytes: u64) -> Result<(u64, u64)> {
    let mut b = tar::Builder::new(BufWriter::new(fs::File::create(path)?));
    let mut seed: u64 = 7;
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut data = vec![0u8; 8 << 20];
    for (i, x) in data.iter_mut().enumerate() {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *x = if i % 3 == 0 {
            (seed >> 56) as u8
        } else {
            b'a' + (i % 26) as u8
        };
    }
    while bytes < target_bytes {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let size = if files % 50 == 0 {
            (1 << 20) | ((seed >> 40) as usize % (4 << 20))
        } else {
            64 + (seed >> 40) as usize % 16_384
        };
        let name = format!(
            "usr/lib/d{:03}/sub{:02}/f{files:07}",
            files % 200,
            files % 17
        );
        let mut h = tar::Header::new_gnu();
        h.set_path(&name)?;
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let off = (seed >> 20) as usize % (data.len() - size);
        b.append(&h, &data[off..off + size])?;
        if files % 100 == 0 {
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            l.set_mode(0o777);
            b.append_link(
                &mut l,
                format!("usr/bin/link{files}"),
                format!("../lib/d000/sub00/f{:07}", 0),
            )?;
        }
        files += 1;
        bytes += size as u64;
    }
    b.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok((files, bytes))
}

/// Regular files and their bytes under `dir` (to check both extracted everything).
fn tally(dir: &Path) -> Result<(u64, u64)> {
    let (mut n, mut b) = (0, 0);
    for e in fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            let (n2, b2) = tally(&e.path())?;
            n += n2;
            b += b2;
        } else if t.is_file() {
            n += 1;
            b += e.metadata()?.len();
        }
    }
    Ok((n, b))
}

fn best_of(runs: usize, mut f: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        best = best.min(f()?);
    }
    Ok(best)
}

fn main() -> Result<()> {
    let mb: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200);
    let work = std::env::temp_dir().join(format!("orch-unpack-bench-{}", std::process::id()));
    fs::create_dir_all(&work)?;
    let layer = work.join("layer.tar");
    let (files, bytes) = make_layer(&layer, mb << 20)?;
    let total = fs::metadata(&layer)?.len();
    println!(
        "layer: {files} files, {:.0} MB of content, {:.0} MB tar",
        bytes as f64 / 1e6,
        total as f64 / 1e6
    );
    // Extract onto a tmpfs when possible: the disk's write-back otherwise dominates and
    // swings the numbers by 2x between runs.
    let dest = work.join("dest");
    fs::create_dir_all(&dest)?;
    let on_tmpfs = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2g", "orch-bench"])
        .arg(&dest)
        .status()?
        .success();
    println!(
        "destination: {}",
        if on_tmpfs {
            "tmpfs"
        } else {
            "disk (tmpfs mount failed)"
        }
    );
    let fresh = |d: &Path| -> Result<()> {
        for e in fs::read_dir(d)? {
            fs::remove_dir_all(e?.path())?;
        }
        // Start each run with no dirty pages of the previous one left to write back.
        Command::new("sync").status()?;
        Ok(())
    };
    let orch = best_of(7, || {
        fresh(&dest)?;
        let start = Instant::now();
        agent::engine::image::unpack::unpack(fs::File::open(&layer)?, &dest)
            .context("orch unpack")?;
        Ok(start.elapsed())
    })?;
    let orch_tally = tally(&dest)?;
    let gnu = best_of(7, || {
        fresh(&dest)?;
        let start = Instant::now();
        let st = Command::new("tar")
            .arg("-xf")
            .arg(&layer)
            .arg("-C")
            .arg(&dest)
            .status()?;
        if !st.success() {
            bail!("tar -xf failed: {st}");
        }
        Ok(start.elapsed())
    })?;
    let gnu_tally = tally(&dest)?;
    if orch_tally != gnu_tally || orch_tally != (files, bytes) {
        bail!(
            "extractions differ: orch {orch_tally:?}, GNU tar {gnu_tally:?}, layer {:?}",
            (files, bytes)
        );
    }
    let rate = |d: Duration| total as f64 / 1e6 / d.as_secs_f64();
    println!(
        "orch unpack: {:.0} MB/s (best of 7: {:.2} s)",
        rate(orch),
        orch.as_secs_f64()
    );
    println!(
        "GNU tar -xf: {:.0} MB/s (best of 7: {:.2} s)",
        rate(gnu),
        gnu.as_secs_f64()
    );
    println!("ratio orch / GNU tar: {:.2}x", rate(orch) / rate(gnu));
    if on_tmpfs {
        Command::new("umount").arg(&dest).status()?;
    }
    fs::remove_dir_all(&work)?;
    Ok(())
}
