//! Attribute macros for `sundown`. Use them through the `sundown` crate.
