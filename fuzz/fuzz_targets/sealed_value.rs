#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| satchel::fuzzing::sealed_value(data));
