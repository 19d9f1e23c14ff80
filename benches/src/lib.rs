//! Shared helpers for the rtm benches.
