//! rtm
#![warn(missing_docs)]
mod error;
mod prefix;
mod sync;
#[allow(dead_code)]
mod trie;
pub use error::{Error, Result};
pub use prefix::{AddressFamily, NetAddress};
