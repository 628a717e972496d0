//! The reference server (in progress).
fn main() {}
