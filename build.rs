//! Mutation check hook: `RTM_MUTANT=<name>` builds the engine with one planted bug
//! (`--cfg rtm_mutant="<name>"`, see `.ci/mutants`). Read here rather than passed in
//! RUSTFLAGS so that switching mutants rebuilds only this crate, not every dependency.
fn main() {
    println!("cargo:rerun-if-env-changed=RTM_MUTANT");
    if let Ok(m) = std::env::var("RTM_MUTANT") {
        if !m.is_empty() {
            println!("cargo:rustc-cfg=rtm_mutant=\"{m}\"");
        }
    }
}
