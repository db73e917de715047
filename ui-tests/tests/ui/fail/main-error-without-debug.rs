// Like std's `main`, the error must implement `Debug` so it can be printed.
use sundown::graceful_main;

struct Opaque;

#[graceful_main]
async fn main() -> Result<(), Opaque> {
    Err(Opaque)
}
