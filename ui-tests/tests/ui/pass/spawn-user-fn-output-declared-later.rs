//! A user function named `spawn` running a closure whose return type the binding's
//! declared type decides.
use sundown::graceful_main;

mod pool {
    pub fn spawn<T>(f: impl FnOnce() -> T) -> T {
        f()
    }
}

#[graceful_main]
async fn main() {
    let v: Vec<u8> = pool::spawn(|| Default::default());
    assert!(v.is_empty());
}
