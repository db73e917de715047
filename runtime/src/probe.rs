//! Output classification at the spawn site, by autoref dispatch.
//!
//! Whether a task's output is a `Result`, and whether its error is or carries
//! [`Cancelled`], can only be decided where the types are concrete. The attributes emit
//! `__classify!(probe_future(&fut))` there; method resolution on `&&&&&OutputProbe<O>`
//! picks the most specific impl below, which hands back a plain function pointer that
//! the (generic) runtime calls on the output when the task ends.

use std::error::Error;
use std::fmt::Debug;
use std::future::IntoFuture;
use std::marker::PhantomData;
use std::ops::Deref;

use crate::error::Cancelled;
use crate::task::TaskOutcome;

/// Carries an output type to the classifier impls.
#[doc(hidden)]
pub struct OutputProbe<O>(PhantomData<fn() -> O>);

/// The probe for a future's (or `IntoFuture`'s) output.
#[doc(hidden)]
pub fn probe_future<F: IntoFuture>(_: &F) -> OutputProbe<F::Output> {
    OutputProbe(PhantomData)
}

/// The probe for a closure's return value.
#[doc(hidden)]
pub fn probe_fn<F: FnOnce() -> R, R>(_: &F) -> OutputProbe<R> {
    OutputProbe(PhantomData)
}

fn classify_error(err: &(dyn Error + 'static)) -> TaskOutcome {
    if Cancelled::is_in_chain(err) {
        TaskOutcome::Cancelled
    } else {
        TaskOutcome::Failed(format!("{err:?}"))
    }
}

/// `Result<T, E>` with `E: std::error::Error`: the source chain is walked.
#[doc(hidden)]
pub trait ViaStdError {
    type Output;
    fn classifier(&self) -> fn(&Self::Output) -> TaskOutcome;
}

impl<T, E: Error + 'static> ViaStdError for &&&&OutputProbe<Result<T, E>> {
    type Output = Result<T, E>;
    fn classifier(&self) -> fn(&Result<T, E>) -> TaskOutcome {
        |r| match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) => {
                if Cancelled::is_in_chain(e) {
                    TaskOutcome::Cancelled
                } else {
                    TaskOutcome::Failed(format!("{e:?}"))
                }
            }
        }
    }
}

/// `anyhow::Error`, `Box<dyn Error + Send + Sync>`.
#[doc(hidden)]
pub trait ViaSendSyncError {
    type Output;
    fn classifier(&self) -> fn(&Self::Output) -> TaskOutcome;
}

impl<T, E> ViaSendSyncError for &&&OutputProbe<Result<T, E>>
where
    E: Deref<Target = dyn Error + Send + Sync + 'static> + Debug,
{
    type Output = Result<T, E>;
    fn classifier(&self) -> fn(&Result<T, E>) -> TaskOutcome {
        |r| match r {
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
}

/// `Box<dyn Error>`.
#[doc(hidden)]
pub trait ViaDynError {
    type Output;
    fn classifier(&self) -> fn(&Self::Output) -> TaskOutcome;
}

impl<T, E> ViaDynError for &&OutputProbe<Result<T, E>>
where
    E: Deref<Target = dyn Error + 'static>,
{
    type Output = Result<T, E>;
    fn classifier(&self) -> fn(&Result<T, E>) -> TaskOutcome {
        |r| match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) => classify_error(&**e),
        }
    }
}

/// Any other `E: Debug`: `Cancelled` itself is recognised by downcasting.
#[doc(hidden)]
pub trait ViaDebug {
    type Output;
    fn classifier(&self) -> fn(&Self::Output) -> TaskOutcome;
}

impl<T, E: Debug + 'static> ViaDebug for &OutputProbe<Result<T, E>> {
    type Output = Result<T, E>;
    fn classifier(&self) -> fn(&Result<T, E>) -> TaskOutcome {
        |r| match r {
            Ok(_) => TaskOutcome::Completed,
            Err(e) if (e as &dyn std::any::Any).is::<Cancelled>() => TaskOutcome::Cancelled,
            Err(e) => TaskOutcome::Failed(format!("{e:?}")),
        }
    }
}

/// Not a `Result`: finishing is completing.
#[doc(hidden)]
pub trait ViaAnyOutput {
    type Output;
    fn classifier(&self) -> fn(&Self::Output) -> TaskOutcome;
}

impl<O> ViaAnyOutput for OutputProbe<O> {
    type Output = O;
    fn classifier(&self) -> fn(&O) -> TaskOutcome {
        crate::task::completed::<O>
    }
}

/// Picks the classifier for a probe; used by the attributes' expansion.
#[doc(hidden)]
#[macro_export]
macro_rules! __classify {
    ($probe:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{
            ViaAnyOutput as _, ViaDebug as _, ViaDynError as _, ViaSendSyncError as _,
            ViaStdError as _,
        };
        (&&&&&$probe).classifier()
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

    #[test]
    fn each_error_shape_is_classified() {
        let c = Cancelled::new(None);

        let f = crate::__classify!(OutputProbe::<Result<(), Cancelled>>(PhantomData));
        assert_eq!(f(&Err(c.clone())), TaskOutcome::Cancelled);
        assert_eq!(f(&Ok(())), TaskOutcome::Completed);

        let f = crate::__classify!(OutputProbe::<Result<(), AppError>>(PhantomData));
        assert_eq!(f(&Err(AppError::from(c.clone()))), TaskOutcome::Cancelled);
        let io = AppError::Io(std::io::Error::other("disk"));
        assert!(matches!(f(&Err(io)), TaskOutcome::Failed(m) if m.contains("disk")));

        let f = crate::__classify!(OutputProbe::<anyhow::Result<()>>(PhantomData));
        assert_eq!(
            f(&Err(anyhow::Error::new(c.clone()).context("poll"))),
            TaskOutcome::Cancelled
        );
        assert!(
            matches!(f(&Err(anyhow::anyhow!("boom"))), TaskOutcome::Failed(m) if m.contains("boom"))
        );

        let f = crate::__classify!(OutputProbe::<Result<(), Box<dyn Error + Send + Sync>>>(
            PhantomData
        ));
        assert_eq!(f(&Err(Box::new(c.clone()))), TaskOutcome::Cancelled);

        let f = crate::__classify!(OutputProbe::<Result<(), Box<dyn Error>>>(PhantomData));
        assert_eq!(f(&Err(Box::new(c.clone()))), TaskOutcome::Cancelled);

        let f = crate::__classify!(OutputProbe::<Result<u8, Plain>>(PhantomData));
        assert!(matches!(f(&Err(Plain)), TaskOutcome::Failed(m) if m == "Plain"));

        let f = crate::__classify!(OutputProbe::<u32>(PhantomData));
        assert_eq!(f(&7), TaskOutcome::Completed);
        let f = crate::__classify!(OutputProbe::<()>(PhantomData));
        assert_eq!(f(&()), TaskOutcome::Completed);
    }
}
