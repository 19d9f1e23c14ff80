//! The crate's error type: a small `Copy` enum, one variant per RTMv2 status the engine
//! can return. [`Error::code`] gives the Win32 value the C ABI returns.

use core::fmt;

/// Everything an rtm call can fail with. Each variant maps to one Win32 status code of
/// RTMv2 ([`Error::code`]). A failed call changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A handle is stale (its object was deregistered or deleted) or of the wrong table.
    /// `ERROR_INVALID_HANDLE` (6).
    InvalidHandle,
    /// An argument is malformed: a prefix length beyond the family's width, an empty view
    /// set, a count over a profile limit, a family mismatch. `ERROR_INVALID_PARAMETER` (87).
    InvalidParameter,
    /// The object looked for does not exist (a lookup miss, a route already deleted).
    /// `ERROR_NOT_FOUND` (1168).
    NotFound,
    /// An entity with this id is already registered. `ERROR_ALREADY_EXISTS` (183).
    AlreadyExists,
    /// The caller does not own the route it tried to change. `ERROR_ACCESS_DENIED` (5).
    AccessDenied,
    /// A view that the instance does not support was requested. `ERROR_NOT_SUPPORTED` (50).
    NotSupported,
    /// An enumeration or change queue is exhausted. `ERROR_NO_MORE_ITEMS` (259).
    NoMoreItems,
    /// A caller-supplied buffer is too small. `ERROR_INSUFFICIENT_BUFFER` (122).
    InsufficientBuffer,
}

impl Error {
    /// The Win32 status code RTMv2 returns for this error.
    pub const fn code(self) -> u32 {
        match self {
            Error::InvalidHandle => 6,
            Error::InvalidParameter => 87,
            Error::NotFound => 1168,
            Error::AlreadyExists => 183,
            Error::AccessDenied => 5,
            Error::NotSupported => 50,
            Error::NoMoreItems => 259,
            Error::InsufficientBuffer => 122,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::InvalidHandle => "invalid or stale handle",
            Error::InvalidParameter => "invalid parameter",
            Error::NotFound => "not found",
            Error::AlreadyExists => "already exists",
            Error::AccessDenied => "access denied: caller does not own the object",
            Error::NotSupported => "view not supported by this instance",
            Error::NoMoreItems => "no more items",
            Error::InsufficientBuffer => "insufficient buffer",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
