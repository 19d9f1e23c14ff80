//! The library half of the `rtm` command: reading routing data ([`input`]), applying update
//! streams ([`replay`]) and the measured runs ([`run`]). The benches reuse it, so they replay the same streams the command does.

pub mod input;
pub mod replay;
pub mod run;
