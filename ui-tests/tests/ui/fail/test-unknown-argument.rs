#[sundown::test(timout = "1s", delay = "1s")]
async fn runs() {}

fn main() {}
