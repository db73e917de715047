//! sundown
