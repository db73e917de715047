use sundown::graceful_main;

struct Server;

impl Server {
    #[graceful_main]
    async fn run(&self) {}
}

fn main() {
    let _ = Server;
}
