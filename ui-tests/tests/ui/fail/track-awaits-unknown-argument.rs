#[sundown::track_awaits(level = 2)]
async fn store() {}

fn main() {
    let _ = store();
}
