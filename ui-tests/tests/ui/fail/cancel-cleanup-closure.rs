use sundown::{Cancelled, cancel_safe};

struct Session;

impl Session {
    async fn flush(&self) {}
}

#[cancel_safe(cleanup = || session.flush())]
async fn poll(session: &Session) -> Result<u32, Cancelled> {
    let _ = session;
    Ok(1)
}

fn main() {
    let _ = poll(&Session);
}
