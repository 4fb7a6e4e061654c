//! Links `rvisor` as a position-dependent executable: every sandbox starts by
//! exec'ing it (the sandbox process, its gofers), and a PIE's start-up would
//! write each of its tens of thousands of relative relocations, a page fault
//! per page they touch, on every one of those execs.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
