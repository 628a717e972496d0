#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_fuzz::tokens::{run, Input};

fuzz_target!(|input: Input| run(&input));
