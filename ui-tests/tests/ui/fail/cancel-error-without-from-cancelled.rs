use sundown::cancel_safe;

#[derive(Debug)]
struct FetchError;

#[cancel_safe]
async fn fetch() -> Result<u32, FetchError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
