//! Compile-fail and compile-pass cases for `#[graceful_main]`, `#[cancel_safe]` and
//! `#[sundown::test]`.
//!
//! Regenerate the expected errors with `TRYBUILD=overwrite cargo test -p sundown-ui-tests`
//! and read every changed `.stderr` before committing it.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
