use sundown::graceful_main;

#[graceful_main]
async fn main<T: Default>() {
    let _ = T::default();
}
