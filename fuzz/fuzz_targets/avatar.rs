//! The profile picture check: any uploaded bytes are accepted as a PNG/JPEG/WebP within the
//! limits or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rampart_app::avatar::process(data);
});
