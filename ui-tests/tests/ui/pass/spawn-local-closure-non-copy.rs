//! A local `Fn` closure named `spawn` that owns a `String` (so it is not `Copy`), called
//! twice.
use sundown::graceful_main;

#[graceful_main]
async fn main() {
    let prefix = String::from("job-");
    let spawn = move |n: u32| format!("{prefix}{n}");
    let a = spawn(1);
    let b = spawn(2);
    assert_eq!((a.as_str(), b.as_str()), ("job-1", "job-2"));
}
