//! Placeholder main; replaced by the demonstration once the core lands.
fn main() {}
