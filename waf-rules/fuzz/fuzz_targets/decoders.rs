#![no_main]
//! Every transform (URL, %u, HTML entities, JS/CSS escapes, base64, path,
//! command line...) and both detectors on arbitrary bytes: no panic, and
//! no output that grows without bound.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rampart_waf::fuzzing::fuzz_all_transforms(data);
    let _ = rampart_waf::fuzzing::is_sqli(data);
    let _ = rampart_waf::fuzzing::is_xss(data);
    let _ = rampart_waf::fuzzing::is_shell_injection(data);
    let _ = rampart_waf::fuzzing::is_log4j(data);
    let _ = rampart_waf::fuzzing::is_path_attack(data);
});
