use sundown::{Cancelled, cancel_safe};

struct Session;

impl Session {
    fn flush_now(&self) {}
}

#[cancel_safe(cleanup = session.flush_now())]
async fn poll(session: &Session) -> Result<u32, Cancelled> {
    let _ = session;
    Ok(1)
}

fn main() {
    let _ = poll(&Session);
}
