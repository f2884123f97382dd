//! The allocator's settings for a serving edge, held without the service unit.
//!
//! mimalloc reads its options from the environment once, as the process loads, before `main`;
//! the `mimalloc` crate offers no safe call to set them later. `rampart-proxy run` therefore
//! starts itself again (same executable, arguments and process id: `exec`) with the settings
//! below added to its environment when they are not there yet. An operator's own value for
//! either variable is kept. Measured (docs/measurements/proxy.md, memory): without
//! `MIMALLOC_PURGE_DELAY=0` the edge stays 3 MB larger idle and 6.7 MB larger after load, as
//! pages the heap frees are returned to the kernel only once the default 1 s delay has passed
//! *and* the allocator runs again, which an idle edge rarely makes it do.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

/// What the edge sets unless the environment already does:
/// - `MIMALLOC_PURGE_DELAY=0`: pages freed are given back to the kernel at once;
/// - `MIMALLOC_ALLOW_THP=0`: no transparent huge pages for the process (mimalloc calls
///   `prctl(PR_SET_THP_DISABLE)`), for hosts whose THP mode is `always`, where the kernel would
///   back the eagerly committed heap arena with 2 MB pages holding a few KB of live data each.
pub const DEFAULTS: &[(&str, &str)] = &[("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ALLOW_THP", "0")];

/// The variables of [`DEFAULTS`] missing from an environment, with their values.
pub fn missing(present: impl Fn(&str) -> bool) -> Vec<(&'static str, &'static str)> {
    DEFAULTS
        .iter()
        .copied()
        .filter(|(name, _)| !present(name))
        .collect()
}

/// Replaces this process by the same executable with the same arguments and [`DEFAULTS`] in
/// its environment, when one is missing; returns (having changed nothing) when none is, or
/// when the executable cannot be started again (a warning says so: the edge then runs with
/// mimalloc's own defaults).
pub fn exec_with_defaults() {
    let add = missing(|name| std::env::var_os(name).is_some());
    if add.is_empty() {
        return;
    }
    let mut args = std::env::args_os();
    let arg0 = args
        .next()
        .unwrap_or_else(|| OsString::from("rampart-proxy"));
    let error = match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe)
            .arg0(arg0)
            .args(args)
            .envs(add)
            .exec(),
        Err(e) => e,
    };
    eprintln!(
        "rampart-proxy: warning: could not restart with the allocator's settings ({error}); \
         set MIMALLOC_PURGE_DELAY=0 MIMALLOC_ALLOW_THP=0 in the environment"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_variables_not_set_are_added() {
        assert_eq!(missing(|_| false), DEFAULTS.to_vec());
        assert!(missing(|_| true).is_empty());
        assert_eq!(
            missing(|name| name == "MIMALLOC_PURGE_DELAY"),
            vec![("MIMALLOC_ALLOW_THP", "0")]
        );
    }
}
