// `Shutdown` may be written with its crate path, and the parameter may be any pattern.

mod qualified {
    #[sundown::graceful_main]
    pub async fn run(mut shutdown: sundown::Shutdown) {
        shutdown = shutdown.child();
        assert!(!shutdown.is_requested());
    }
}

mod absolute {
    #[sundown::graceful_main]
    pub async fn run(_: ::sundown::Shutdown) -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn main() {
    // Each one would run a whole program; naming them is enough to check they compile.
    let entry_points: [fn(); 2] = [qualified::run, absolute::run];
    assert_eq!(entry_points.len(), 2);
}
