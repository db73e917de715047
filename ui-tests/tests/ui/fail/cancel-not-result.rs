use sundown::cancel_safe;

#[cancel_safe]
async fn fetch() -> u32 {
    1
}

fn main() {
    let _ = fetch();
}
