//! Every input saved by the fuzz targets (`fuzz/corpus/<target>`, grown by
//! `scripts/fuzz.sh`), replayed through the same entry points on the stable toolchain:
//! an input that once crashed a parser stays fixed.

#![cfg(feature = "fuzzing")]

use std::path::Path;

#[test]
fn every_saved_fuzz_input_is_handled() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, target) in satchel::fuzzing::TARGETS {
        let dir = root.join(name);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
        let mut replayed = 0;
        for entry in entries {
            let path = entry.expect("a corpus entry").path();
            let bytes = std::fs::read(&path).expect("a corpus file");
            target(&bytes);
            replayed += 1;
        }
        assert!(
            replayed > 0,
            "no saved input for {name} in {}",
            dir.display()
        );
        eprintln!("{name}: {replayed} inputs");
    }
}
