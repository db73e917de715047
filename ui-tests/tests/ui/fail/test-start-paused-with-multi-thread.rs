#[sundown::test(flavor = "multi_thread", start_paused = true)]
async fn runs() {}

#[sundown::test(start_paused = "yes")]
async fn not_a_bool() {}

fn main() {}
