#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| satchel::fuzzing::redis_value(data));
