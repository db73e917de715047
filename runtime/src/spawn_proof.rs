//! Spawns the macro sees but cannot recognise by their path: an imported or renamed
//! `spawn` (`use tokio::spawn; spawn(x)`, `task::spawn(x)`) and `.spawn(x)` on a
//! runtime handle. The types decide, by autoref dispatch like the output probe: a
//! callee whose type is tokio's own `spawn` function is tracked; one whose type is
//! sundown's own (`use sundown::spawn; spawn(x)`, which tracks its task itself) is
//! called as written; any other is called as written and its call is flagged by the
//! deprecation lint at the user's span. A receiver whose type is tokio's `Handle`
//! spawns a tracked task on that handle.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use tokio::task::JoinHandle;

use crate::probe::Classify;
use crate::task::TaskName;

/// sundown's own `spawn`: a callee of its type tracks its task itself.
pub use crate::spawn as sundown_spawn;
/// sundown's own `spawn_blocking`.
pub use crate::spawn_blocking as sundown_spawn_blocking;
pub use tokio::runtime::Handle as TokioHandle;
/// The function a proven callee must be (the same item as `tokio::task::spawn`).
pub use tokio::spawn as tokio_spawn;
/// The function a proven blocking callee must be.
pub use tokio::task::spawn_blocking as tokio_spawn_blocking;

/// The future tokio's `spawn` is instantiated with when a callee is not it, so that
/// the comparison leaves no type to infer.
type Unused = std::future::Ready<()>;

/// Three function types, compared by method resolution: the callee's (`A`), tokio's
/// (`B`) and sundown's (`S`). The callee is tokio's function when `A` is `B`, sundown's
/// when `A` is `S`. Each method also asks that `A` take the call's argument: the
/// callee is named twice (for its type here, and in the user's call), and a generic
/// function named twice is two instances until something says they are one.
pub struct SpawnProof<A, B, S>(PhantomData<Compared<A, B, S>>);

/// What a proof compares, held by type only.
type Compared<A, B, S> = (fn() -> A, fn() -> B, fn() -> S);

impl<A, B, S> SpawnProof<A, B, S> {
    /// Compares the callee's type with tokio's and sundown's functions'.
    pub fn new(_callee: &A, _tokio: B, _sundown: S) -> Self {
        SpawnProof(PhantomData)
    }
}

/// A trait whose method makes the user's call as written: the callee's type `A` is
/// tied to the argument (see [`SpawnProof`]), and each other function type of the proof
/// is pinned to its instance for `$unused`, so that none is left to infer.
macro_rules! called_as_written {
    (
        $(#[$trait_attr:meta])*
        trait $name:ident<A, $($other:ident),+>;
        $(#[$method_attr:meta])*
        fn $method:ident, instance $unused:ty;
    ) => {
        $(#[$trait_attr])*
        pub trait $name<A, $($other),+> {
            $(#[$method_attr])*
            fn $method<X, R, G, K>(
                &self,
                name: &'static str,
                detached: bool,
                argument: X,
                call: G,
                classify: K,
            ) -> R
            where
                G: FnOnce(X) -> R,
                A: FnOnce(X) -> R,
                $($other: FnOnce($unused) -> JoinHandle<()>,)+
            {
                let _ = (name, detached, classify);
                call(argument)
            }
        }
    };
}

/// The callee is tokio's `spawn`: tracked on the ambient scope, as `tokio::spawn`
/// written out in full is.
pub trait ProvenTokioSpawn<A, S> {
    /// Spawns `fut` tracked; `call` (the user's call) only fixes its types.
    #[track_caller]
    fn spawn_future<F, G, K, C>(
        &self,
        name: &'static str,
        detached: bool,
        fut: F,
        call: G,
        classify: K,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        G: FnOnce(F) -> JoinHandle<F::Output>,
        K: FnOnce() -> C,
        C: Classify<F::Output>,
        A: FnOnce(F) -> JoinHandle<F::Output>,
        S: FnOnce(Unused) -> JoinHandle<()>,
    {
        let _ = call;
        crate::__private::spawn_tracked(name, detached, fut, classify())
    }
}

impl<T, S> ProvenTokioSpawn<T, S> for &&SpawnProof<T, T, S> {}

called_as_written! {
    /// The callee is sundown's `spawn`, imported or renamed: called as written (it
    /// tracks its task itself), without a warning.
    trait SundownSpawn<A, B>;
    /// Calls the user's function.
    fn spawn_future, instance Unused;
}

impl<T, B> SundownSpawn<T, B> for &SpawnProof<T, B, T> {}

called_as_written! {
    /// The callee is neither tokio's `spawn` nor sundown's as far as its type shows:
    /// called as written.
    trait UnprovenSpawn<A, B, S>;
    /// Calls the user's function; the deprecation note is the warning the user sees.
    #[deprecated(
        note = "sundown cannot tell that this `spawn` is tokio's, so the task is not \
                tracked and shutdown will not wait for it: call `tokio::spawn` (or \
                `sundown::spawn`) to track it, or write the callee in parentheses, \
                `(spawn)(task)`, to leave it untracked without this warning"
    )]
    fn spawn_future, instance Unused;
}

impl<A, B, S> UnprovenSpawn<A, B, S> for SpawnProof<A, B, S> {}

/// The callee is tokio's `spawn_blocking`: tracked on the ambient scope.
pub trait ProvenTokioSpawnBlocking<A, S> {
    /// Runs `f` as a tracked blocking task; `call` only fixes its types.
    #[track_caller]
    fn spawn_function<F, R, G, K, C>(
        &self,
        name: &'static str,
        detached: bool,
        f: F,
        call: G,
        classify: K,
    ) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
        G: FnOnce(F) -> JoinHandle<R>,
        K: FnOnce() -> C,
        C: Classify<R>,
        A: FnOnce(F) -> JoinHandle<R>,
        S: FnOnce(fn()) -> JoinHandle<()>,
    {
        let _ = call;
        crate::__private::spawn_blocking_tracked(name, detached, f, classify())
    }
}

impl<T, S> ProvenTokioSpawnBlocking<T, S> for &&SpawnProof<T, T, S> {}

called_as_written! {
    /// The callee is sundown's `spawn_blocking`, imported or renamed: called as
    /// written, without a warning.
    trait SundownSpawnBlocking<A, B>;
    /// Calls the user's function.
    fn spawn_function, instance fn();
}

impl<T, B> SundownSpawnBlocking<T, B> for &SpawnProof<T, B, T> {}

called_as_written! {
    /// The callee is neither tokio's `spawn_blocking` nor sundown's as far as its
    /// type shows.
    trait UnprovenSpawnBlocking<A, B, S>;
    /// Calls the user's function; the deprecation note is the warning the user sees.
    #[deprecated(
        note = "sundown cannot tell that this `spawn_blocking` is tokio's, so the task \
                is not tracked and shutdown will not wait for it: call \
                `tokio::task::spawn_blocking` (or `sundown::spawn_blocking`) to track \
                it, or write the callee in parentheses, `(spawn_blocking)(f)`, to \
                leave it untracked without this warning"
    )]
    fn spawn_function, instance fn();
}

impl<A, B, S> UnprovenSpawnBlocking<A, B, S> for SpawnProof<A, B, S> {}

/// The type of a `.spawn(x)` call's receiver.
pub struct SpawnReceiver<R: ?Sized>(PhantomData<fn() -> *const R>);

impl<R: ?Sized> SpawnReceiver<R> {
    /// Looks at the receiver's type only; the borrow ends here.
    pub fn of(_receiver: &R) -> Self {
        SpawnReceiver(PhantomData)
    }
}

/// A future handed to a runtime handle: tracked on the ambient scope, boxed so that
/// the type the handle is given is a public one.
type BoxedTask<O> = Pin<Box<dyn Future<Output = O> + Send + 'static>>;

/// The receiver is tokio's `Handle` (or a reference to one): the task is tracked and
/// spawned through the user's own call, so it runs on that handle's runtime.
pub trait TokioHandleSpawn {
    /// Wraps `fut` as a tracked task and hands it to `spawn` (the user's call); the
    /// classifier is made after that call is type-checked, so the receiver may
    /// decide the output type first (`JoinSet<anyhow::Result<()>>`).
    #[track_caller]
    fn spawn_through<F, G, K, C>(
        &self,
        name: &'static str,
        detached: bool,
        fut: F,
        spawn: G,
        classify: K,
    ) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        G: FnOnce(BoxedTask<F::Output>) -> JoinHandle<F::Output>,
        K: FnOnce() -> C,
        C: Classify<F::Output>,
    {
        let location = std::panic::Location::caller();
        let Some(scope) = crate::task::ambient::spawn_scope() else {
            return spawn(Box::pin(fut));
        };
        crate::task::spawn_with(
            scope.get(),
            TaskName::Given(name.into()),
            location,
            fut,
            classify(),
            detached,
            |task| spawn(Box::pin(task)),
        )
    }
}

impl TokioHandleSpawn for &SpawnReceiver<TokioHandle> {}
impl TokioHandleSpawn for &SpawnReceiver<&TokioHandle> {}
impl TokioHandleSpawn for &SpawnReceiver<std::sync::Arc<TokioHandle>> {}
impl TokioHandleSpawn for &SpawnReceiver<&std::sync::Arc<TokioHandle>> {}

/// Any other receiver: its `.spawn(x)` is called as written.
pub trait UntrackedReceiver {
    /// Calls `spawn` (the user's call) with the argument.
    fn spawn_through<X, Y, G, K>(
        &self,
        name: &'static str,
        detached: bool,
        argument: X,
        spawn: G,
        classify: K,
    ) -> Y
    where
        G: FnOnce(X) -> Y,
    {
        let _ = (name, detached, classify);
        spawn(argument)
    }
}

impl<R: ?Sized> UntrackedReceiver for SpawnReceiver<R> {}
