//! `rampart-proxy demo` (filled in below).
use std::path::PathBuf;
pub fn run(_dir: Option<PathBuf>) -> Result<(), String> {
    Err("demo not built yet".into())
}
