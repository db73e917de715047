//! The facts both crates rely on (duration grammar, signal names, defaults) have one
//! source: `macros/src/facts.rs`. The runtime's copy must be the same file.

#[test]
fn the_runtime_carries_the_macro_crates_facts_unchanged() {
    let source = include_str!("../../macros/src/facts.rs");
    let copy = include_str!("../../runtime/src/facts.rs");
    assert!(
        source == copy,
        "runtime/src/facts.rs differs from macros/src/facts.rs: copy the macro crate's file \
         over the runtime's"
    );
}
