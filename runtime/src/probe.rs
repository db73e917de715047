//! Output classification at the spawn site, by autoref dispatch.
//!
//! Whether a task's output is a `Result`, and whether its error is or carries
//! [`Cancelled`], can only be decided where the types are concrete. The attributes emit
//! `__classify!(probe_future(&fut))` there; method resolution on `&&&&&OutputProbe<O>`
//! picks the most specific impl below, which hands back a zero-sized [`Classify`] value
//! that the (generic) runtime calls on the output when the task ends.
//!
//! Method resolution commits to the impl it picks, so a level must not be picked for an
//! output type that is not known yet: the most specific level is the never type's. An
//! output still unknown where the probe is resolved is one only fallback will decide: a
//! diverging body (`async { loop { .. } }`, `|| panic!()`). That level settles it as `!`,
//! which is what edition 2024's fallback gives under `#[tokio::main]` too, and which
//! coerces to whatever older editions' `()` was used as.

use std::error::Error;
use std::fmt::Debug;
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::ops::Deref;

use crate::error::Cancelled;
use crate::registry::TaskOutcome;

/// Carries an output type to the classifier impls.
#[doc(hidden)]
pub struct OutputProbe<O>(PhantomData<fn() -> O>);

/// The probe for a future's (or `IntoFuture`'s) output.
#[doc(hidden)]
pub fn probe_future<F: IntoFuture>(_: &F) -> OutputProbe<F::Output> {
    OutputProbe(PhantomData)
}

/// The probe for a future whose output the user declared (`let h: JoinHandle<O> = ..`):
/// the output type is then known where the probe is resolved, though the code that
/// decides it comes later.
#[doc(hidden)]
pub fn probe_future_as<O, F: IntoFuture<Output = O>>(_: &F) -> OutputProbe<O> {
    OutputProbe(PhantomData)
}

/// The probe for an output type the user declared for the handle, whatever the
/// spawned value is (a spawn the macro can only prove by its callee's type).
#[doc(hidden)]
pub fn probe_declared<O>() -> OutputProbe<O> {
    OutputProbe(PhantomData)
}

/// The probe for a closure whose return type the user declared.
#[doc(hidden)]
pub fn probe_fn_as<R, F: FnOnce() -> R>(_: &F) -> OutputProbe<R> {
    OutputProbe(PhantomData)
}

/// The probe for a closure's return value.
#[doc(hidden)]
pub fn probe_fn<F: FnOnce() -> R, R>(_: &F) -> OutputProbe<R> {
    OutputProbe(PhantomData)
}

/// How a finished task's output counts, decided by a zero-sized value picked at the
/// spawn site: a task's future carries its classifier at no cost in size.
#[doc(hidden)]
pub trait Classify<O>: Copy + Send + Sync + 'static {
    /// Counts `output`; a failure carries the error's `{:?}` (main's `Err` is printed
    /// with it, as std does).
    fn classify(self, output: &O) -> TaskOutcome;

    /// Counts a task's `output`; a failure carries what its report line says: for an
    /// error type, its message chain (`writing report: disk full`) without the
    /// backtrace `anyhow`'s `{:?}` adds under `RUST_BACKTRACE=1`.
    fn classify_task(self, output: &O) -> TaskOutcome {
        self.classify(output)
    }
}

fn classify_error(err: &(dyn Error + 'static)) -> TaskOutcome {
    if Cancelled::is_in_chain(err) {
        TaskOutcome::Cancelled
    } else {
        TaskOutcome::Failed(format!("{err:?}"))
    }
}

/// `err`'s message, then each source's, joined by `: `.
fn message_chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        // Some errors repeat their source's message in their own: say it once.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// [`Classify::classify_task`] for an error type: cancellation, or the chain.
fn classify_task_error(err: &(dyn Error + 'static)) -> TaskOutcome {
    if Cancelled::is_in_chain(err) {
        TaskOutcome::Cancelled
    } else {
        TaskOutcome::Failed(message_chain(err))
    }
}

/// Names the never type on stable Rust: `fn() -> !` is a type today, `!` alone is not.
#[doc(hidden)]
pub trait FnOutput {
    /// What the function returns.
    type Output;
}

impl<R> FnOutput for fn() -> R {
    type Output = R;
}

/// `!`: the output of a future or closure that never returns.
type Never = <fn() -> ! as FnOutput>::Output;

#[doc(hidden)]
pub trait ViaNever {
    fn classifier(&self) -> AnyOutput;
}

/// The most specific level, so an output type not yet known when the probe is resolved
/// (a diverging body, decided only by fallback) becomes `!` instead of `Result<_, _>`.
impl ViaNever for &&&&&OutputProbe<Never> {
    fn classifier(&self) -> AnyOutput {
        AnyOutput
    }
}

/// `Result<T, E>` with `E: std::error::Error`: the source chain is walked.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct StdErrorResult;

impl<T, E: Error + 'static> Classify<Result<T, E>> for StdErrorResult {
    fn classify(self, r: &Result<T, E>) -> TaskOutcome {
        match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) if Cancelled::is_in_chain(e) => TaskOutcome::Cancelled,
            Err(e) => TaskOutcome::Failed(format!("{e:?}")),
        }
    }

    fn classify_task(self, r: &Result<T, E>) -> TaskOutcome {
        match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) => classify_task_error(e),
        }
    }
}

#[doc(hidden)]
pub trait ViaStdError {
    fn classifier(&self) -> StdErrorResult;
}

impl<T, E: Error + 'static> ViaStdError for &&&&OutputProbe<Result<T, E>> {
    fn classifier(&self) -> StdErrorResult {
        StdErrorResult
    }
}

/// `anyhow::Error`, `Box<dyn Error + Send + Sync>`.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct SendSyncErrorResult;

impl<T, E> Classify<Result<T, E>> for SendSyncErrorResult
where
    E: Deref<Target = dyn Error + Send + Sync + 'static> + Debug,
{
    fn classify(self, r: &Result<T, E>) -> TaskOutcome {
        match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) => {
                let inner: &(dyn Error + 'static) = &**e;
                if Cancelled::is_in_chain(inner) {
                    TaskOutcome::Cancelled
                } else {
                    TaskOutcome::Failed(format!("{e:?}"))
                }
            }
        }
    }

    fn classify_task(self, r: &Result<T, E>) -> TaskOutcome {
        match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) => classify_task_error(&**e),
        }
    }
}

#[doc(hidden)]
pub trait ViaSendSyncError {
    fn classifier(&self) -> SendSyncErrorResult;
}

impl<T, E> ViaSendSyncError for &&&OutputProbe<Result<T, E>>
where
    E: Deref<Target = dyn Error + Send + Sync + 'static> + Debug,
{
    fn classifier(&self) -> SendSyncErrorResult {
        SendSyncErrorResult
    }
}

/// `Box<dyn Error>`.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct DynErrorResult;

impl<T, E> Classify<Result<T, E>> for DynErrorResult
where
    E: Deref<Target = dyn Error + 'static>,
{
    fn classify(self, r: &Result<T, E>) -> TaskOutcome {
        match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) => classify_error(&**e),
        }
    }

    fn classify_task(self, r: &Result<T, E>) -> TaskOutcome {
        match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) => classify_task_error(&**e),
        }
    }
}

#[doc(hidden)]
pub trait ViaDynError {
    fn classifier(&self) -> DynErrorResult;
}

impl<T, E> ViaDynError for &&OutputProbe<Result<T, E>>
where
    E: Deref<Target = dyn Error + 'static>,
{
    fn classifier(&self) -> DynErrorResult {
        DynErrorResult
    }
}

/// Any other `E: Debug`: `Cancelled` itself is recognised by downcasting.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct DebugResult;

impl<T, E: Debug + 'static> Classify<Result<T, E>> for DebugResult {
    fn classify(self, r: &Result<T, E>) -> TaskOutcome {
        match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) if (e as &dyn std::any::Any).is::<Cancelled>() => TaskOutcome::Cancelled,
            Err(e) => TaskOutcome::Failed(format!("{e:?}")),
        }
    }
}

#[doc(hidden)]
pub trait ViaDebug {
    fn classifier(&self) -> DebugResult;
}

impl<T, E: Debug + 'static> ViaDebug for &OutputProbe<Result<T, E>> {
    fn classifier(&self) -> DebugResult {
        DebugResult
    }
}

/// Not a `Result` (or nobody inspects it): finishing is completing.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct AnyOutput;

impl<O> Classify<O> for AnyOutput {
    fn classify(self, _: &O) -> TaskOutcome {
        TaskOutcome::Completed
    }
}

#[doc(hidden)]
pub trait ViaAnyOutput {
    fn classifier(&self) -> AnyOutput;
}

impl<O> ViaAnyOutput for OutputProbe<O> {
    fn classifier(&self) -> AnyOutput {
        AnyOutput
    }
}

/// The argument of a spawn the macro cannot prove to be tokio's: it may be anything, so
/// its probe must compile whatever it is.
#[doc(hidden)]
pub struct ArgumentProbe<X>(PhantomData<fn() -> X>);

// Not derived: a probe is `Copy` whatever it probes.
impl<X> Clone for ArgumentProbe<X> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<X> Copy for ArgumentProbe<X> {}

/// The probe for a spawn's argument, a future or a closure or neither.
#[doc(hidden)]
pub fn probe_argument<X>(_: &X) -> ArgumentProbe<X> {
    ArgumentProbe(PhantomData)
}

/// What an argument that is neither a future nor a closure gives: nothing to classify.
#[doc(hidden)]
pub struct NotATask;

#[doc(hidden)]
pub trait ViaFutureArgument<O> {
    fn output_probe(&self) -> OutputProbe<O>;
}

impl<F: IntoFuture> ViaFutureArgument<F::Output> for &&ArgumentProbe<F> {
    fn output_probe(&self) -> OutputProbe<F::Output> {
        OutputProbe(PhantomData)
    }
}

#[doc(hidden)]
pub trait ViaFunctionArgument<R> {
    fn output_probe(&self) -> OutputProbe<R>;
}

impl<F: FnOnce() -> R, R> ViaFunctionArgument<R> for &ArgumentProbe<F> {
    fn output_probe(&self) -> OutputProbe<R> {
        OutputProbe(PhantomData)
    }
}

#[doc(hidden)]
pub trait ViaOtherArgument {
    fn output_probe(&self) -> OutputProbe<NotATask>;
}

impl<X> ViaOtherArgument for ArgumentProbe<X> {
    fn output_probe(&self) -> OutputProbe<NotATask> {
        OutputProbe(PhantomData)
    }
}

/// The output probe for an [`ArgumentProbe`]: a future's output, a closure's return
/// value, or [`NotATask`] for anything else.
#[doc(hidden)]
#[macro_export]
macro_rules! __probe_argument {
    ($probe:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{
            ViaFunctionArgument as _, ViaFutureArgument as _, ViaOtherArgument as _,
        };
        (&&&$probe).output_probe()
    }};
}

/// Picks the classifier for a probe; used by the attributes' expansion.
#[doc(hidden)]
#[macro_export]
macro_rules! __classify {
    ($probe:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{
            ViaAnyOutput as _, ViaDebug as _, ViaDynError as _, ViaNever as _,
            ViaSendSyncError as _, ViaStdError as _,
        };
        (&&&&&&$probe).classifier()
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Plain;

    #[derive(Debug, thiserror::Error)]
    enum AppError {
        #[error("cancelled")]
        Cancelled(#[from] Cancelled),
        #[error("io")]
        Io(#[from] std::io::Error),
    }

    /// The outcome `classify!` gives `out`, as a task whose output type is `O` would.
    macro_rules! outcome {
        ($ty:ty, $out:expr) => {{
            let probe = OutputProbe::<$ty>(PhantomData);
            let out: $ty = $out;
            crate::__classify!(probe).classify(&out)
        }};
    }

    #[test]
    fn each_error_shape_is_classified() {
        let c = Cancelled::new(None);
        let cancelled = TaskOutcome::Cancelled;
        let completed = TaskOutcome::Completed;

        assert_eq!(outcome!(Result<(), Cancelled>, Err(c.clone())), cancelled);
        assert_eq!(outcome!(Result<(), Cancelled>, Ok(())), completed);

        let app = outcome!(Result<(), AppError>, Err(AppError::from(c.clone())));
        assert_eq!(app, cancelled);
        let io = AppError::Io(std::io::Error::other("disk"));
        let io = outcome!(Result<(), AppError>, Err(io));
        assert!(matches!(io, TaskOutcome::Failed(m) if m.contains("disk")));

        let chained = anyhow::Error::new(c.clone()).context("poll");
        assert_eq!(outcome!(anyhow::Result<()>, Err(chained)), cancelled);
        let boom = outcome!(anyhow::Result<()>, Err(anyhow::anyhow!("boom")));
        assert!(matches!(boom, TaskOutcome::Failed(m) if m.contains("boom")));

        let boxed = outcome!(Result<(), Box<dyn Error + Send + Sync>>, Err(Box::new(c.clone())));
        assert_eq!(boxed, cancelled);
        let boxed = outcome!(Result<(), Box<dyn Error>>, Err(Box::new(c.clone())));
        assert_eq!(boxed, cancelled);

        let plain = outcome!(Result<u8, Plain>, Err(Plain));
        assert!(matches!(plain, TaskOutcome::Failed(m) if m == "Plain"));

        assert_eq!(outcome!(u32, 7), completed);
        assert_eq!(outcome!((), ()), completed);
    }

    /// Regression: an output type that only fallback decides (a diverging body) was
    /// constrained to `Result<_, _>` by the probe, and the spawn did not compile.
    #[test]
    fn a_diverging_output_is_settled_as_never_not_as_a_result() {
        fn infer<O>(_: &OutputProbe<O>) -> &'static str {
            std::any::type_name::<O>()
        }
        let diverging = async { panic!("never polled") };
        let probe = probe_future(&diverging);
        let classify = crate::__classify!(probe_future(&diverging));
        assert_eq!(infer(&probe), "!");
        assert_eq!(std::mem::size_of_val(&classify), 0);
        let looping = || {
            loop {
                std::thread::park();
            }
        };
        let probe = probe_fn(&looping);
        let _ = crate::__classify!(probe_fn(&looping));
        assert_eq!(infer(&probe), "!");
    }

    #[test]
    fn arguments_are_probed_whatever_they_are() {
        fn output<O>(_: &OutputProbe<O>) -> &'static str {
            std::any::type_name::<O>()
        }
        let future = async { Ok::<u8, Cancelled>(1) };
        assert_eq!(
            output(&crate::__probe_argument!(probe_argument(&future))),
            std::any::type_name::<Result<u8, Cancelled>>()
        );
        let closure = || 7_u16;
        assert_eq!(
            output(&crate::__probe_argument!(probe_argument(&closure))),
            "u16"
        );
        assert!(output(&crate::__probe_argument!(probe_argument(&3_u8))).ends_with("NotATask"));
        let failing = async { Err::<(), Cancelled>(Cancelled::new(None)) };
        let classify = crate::__classify!(crate::__probe_argument!(probe_argument(&failing)));
        assert_eq!(
            classify.classify(&Err::<(), Cancelled>(Cancelled::new(None))),
            TaskOutcome::Cancelled
        );
    }

    #[test]
    fn a_task_failure_is_the_message_chain_without_a_backtrace() {
        let err: anyhow::Result<()> =
            Err(anyhow::anyhow!("disk full").context("writing the report"));
        let probe = OutputProbe::<anyhow::Result<()>>(PhantomData);
        let classify = crate::__classify!(probe);
        assert_eq!(
            classify.classify_task(&err),
            TaskOutcome::Failed("writing the report: disk full".into())
        );
        match classify.classify(&err) {
            TaskOutcome::Failed(debug) => assert!(debug.contains("Caused by:"), "{debug}"),
            other => panic!("{other:?}"),
        }
        let io: Result<(), AppError> = Err(AppError::Io(std::io::Error::other("disk")));
        let classify = crate::__classify!(OutputProbe::<Result<(), AppError>>(PhantomData));
        assert!(matches!(classify.classify_task(&io), TaskOutcome::Failed(m) if !m.contains('\n')));
    }

    #[test]
    fn classifiers_take_no_room() {
        let f = crate::__classify!(OutputProbe::<anyhow::Result<()>>(PhantomData));
        assert_eq!(std::mem::size_of_val(&f), 0);
    }
}
