use sundown::cancel_safe;

#[cancel_safe]
async fn flush() {}

fn main() {
    let _ = flush();
}
