//! Writes the seed corpora: `cargo run --example seeds` (see `seeds.sh`).
//!
//! Each seed is the encoding of a chosen input; the program checks that `arbitrary` decodes
//! every file back to the input it was written from, so the seeds stay meaningful.

use std::fmt::Debug;
use std::fs;
use std::path::Path;

use arbitrary::Arbitrary;
use switchboard_fuzz::enc::decode;
use switchboard_fuzz::{events, frames, handshake, tokens, Encode};

fn write<T>(root: &Path, target: &str, seeds: Vec<(String, T)>, run: fn(&T))
where
    T: Encode + PartialEq + Debug + for<'a> Arbitrary<'a>,
{
    let dir = root.join(target);
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("remove old seeds");
    }
    fs::create_dir_all(&dir).expect("create seed dir");
    for (name, input) in &seeds {
        let bytes = input.to_bytes();
        let back: T = decode(&bytes).expect("a seed decodes");
        assert_eq!(
            &back, input,
            "seed {target}/{name} does not decode to itself"
        );
        // Seeds must pass the target's own checks.
        run(input);
        fs::write(dir.join(name), &bytes).expect("write seed");
    }
    println!("{target}: {} seeds", seeds.len());
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    write(&root, "client_frames", frames::seeds(), frames::run);
    write(&root, "event_sequences", events::seeds(), events::run);
    write(&root, "tokens", tokens::seeds(), tokens::run);
    write(&root, "handshake", handshake::seeds(), handshake::run);
}
