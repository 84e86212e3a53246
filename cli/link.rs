//! Build script: link `orch` as a position-dependent executable (`-no-pie`). A PIE
//! of this size carries ~100k relative relocations that the dynamic loader applies at
//! every exec, dirtying all of `.data.rel.ro` and `.got` (1.4 MiB private in each
//! process in a debug build): every per-container shim paid that, and every CLI call
//! the time. Libraries, stack and heap stay randomized; only the binary's own image
//! has a fixed address (as Go's static binaries, containerd's shims among them, do).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=orch=-no-pie");
    }
}
