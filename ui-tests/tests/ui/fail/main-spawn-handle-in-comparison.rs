// A spawn at the start of a statement stays an operand: comparing its handle is a type
// error at the user's `==`, not a syntax error in the expansion.
use sundown::graceful_main;

#[graceful_main]
async fn main() {
    tokio::spawn(async {}) == 1;
}
