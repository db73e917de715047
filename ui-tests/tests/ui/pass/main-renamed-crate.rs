// The runtime under another name (Cargo does not allow one package twice under two names
// in one dependency table, so the rename is made here). The expansion must reach it only
// through the `crate` path; a unit test of the macro crate checks that no `::sundown` path
// is generated when `crate` is given.
extern crate sundown as sundown_renamed;

use sundown_renamed::{Shutdown, graceful_main};

#[graceful_main(crate = "::sundown_renamed", timeout = "3s")]
async fn main(shutdown: Shutdown) {
    drop(shutdown);
    tokio::spawn(async {});
}
