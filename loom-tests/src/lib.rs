//! Loom models of rtm live in `tests/`; this library is empty.
