//! rtm
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod bulk;
mod dest;
mod entity;
mod error;
pub mod gen;
mod group;
mod identity;
mod leaf;
mod lone;
mod prefix;
mod query;
mod route;
mod sync;
mod table;
mod trie;
mod update;
mod view;

pub use bulk::MAX_ROUTES_IN_BATCH;
pub use dest::DestRef;
pub use entity::{EntityId, EntityInfo, EntityRef};
pub use error::{Error, Result};
pub use prefix::{AddressFamily, NetAddress};
pub use query::{Best, Guard, RouteMatch};
pub use route::{
    flags, AddMode, ChangeFlags, NextHop, NextHopList, RouteInfo, RouteParams, RouteRef, RouteState, Version,
};
pub use sync::drain_deferred_garbage;
#[cfg(loom)]
#[doc(hidden)]
pub use sync::{flush_epoch, flush_epoch_times, reset_pending};
pub use table::{live_objects, LiveObjects, RegnProfile, Rtm, RtmBuilder, Table, TableMemory};
pub use view::{ViewId, ViewSet};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
