//! `.spawn(x)` on a field (or element) of a temporary: a `JoinSet` in a guard, a tokio
//! `Handle` behind a getter. The temporary is bound and the field named on it; moving
//! the field out of the guard or the reference did not compile.
use std::sync::Mutex;

use sundown::graceful_main;
use tokio::runtime::Handle;
use tokio::task::JoinSet;

struct State {
    tasks: JoinSet<u32>,
    sets: Vec<JoinSet<u32>>,
}

struct Ctx {
    rt: Handle,
}

struct App {
    state: Mutex<State>,
    ctx: Ctx,
    handles: Vec<Handle>,
}

impl App {
    fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    fn handles(&self) -> &[Handle] {
        &self.handles
    }

    fn boxed(&self) -> Box<Ctx> {
        Box::new(Ctx {
            rt: self.ctx.rt.clone(),
        })
    }
}

async fn work() -> u32 {
    std::future::pending::<()>().await;
    7
}

async fn seven() -> u32 {
    7
}

#[graceful_main]
async fn main() {
    let app = App {
        state: Mutex::new(State {
            tasks: JoinSet::new(),
            sets: vec![JoinSet::new()],
        }),
        ctx: Ctx {
            rt: Handle::current(),
        },
        handles: vec![Handle::current()],
    };
    app.state.lock().unwrap().tasks.spawn(seven());
    let shutdown = sundown::Shutdown::current();
    let before = shutdown.stats().running;
    let a = app.ctx().rt.spawn(work());
    let b = app.handles()[0].spawn(work());
    let c = (*app.boxed()).rt.spawn(work());
    // A computed index, made once, after the temporary and before the argument.
    let order = Mutex::new(Vec::new());
    let note = |what: &'static str, n: usize| {
        order.lock().unwrap().push(what);
        n
    };
    let d = app.handles()[note("index", 0)].spawn(async {
        std::future::pending::<()>().await;
    });
    let zero = 0;
    app.state.lock().unwrap().sets[zero].spawn(seven());
    assert_eq!(*order.lock().unwrap(), ["index"]);
    // The four handles are tokio's: tracked.
    assert_eq!(shutdown.stats().running, before + 4);
    for h in [a, b, c] {
        h.abort();
    }
    d.abort();
    let joined = app.state.lock().unwrap().tasks.try_join_next();
    let _ = joined;
}
