//! Link flags of the `rampart-proxy` binary.
//!
//! `-z pack-relative-relocs` (DT_RELR): the position-independent binary's ~24,000 relative
//! relocations take ~10 KB instead of 564 KB of `.rela.dyn`, which the dynamic loader reads
//! whole at every start, so those pages stayed resident for the life of the process
//! (docs/measurements/proxy.md, memory). Needs GNU ld >= 2.38 or lld to link and glibc >= 2.36
//! to run (Debian 12); nothing else changes (still PIE, RELRO, same code).
fn main() {
    println!("cargo:rustc-link-arg-bin=rampart-proxy=-Wl,-z,pack-relative-relocs");
}
