#[sundown::test]
fn not_async() {}

#[sundown::test]
async fn takes_a_parameter(n: u32) {}

#[sundown::test]
#[test]
async fn twice_a_test() {}

fn main() {}
