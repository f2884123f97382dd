#![no_main]
//! JSON, form, multipart, XML and cookie parsing of arbitrary bytes, within
//! the default limits.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rampart_waf::fuzzing::fuzz_extract(data);
});
