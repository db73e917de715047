//! With a `tracing` subscriber installed, shutdown steps, stragglers and failures are
//! structured events. (Its own test binary: the subscriber is process-global.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut f = Fields(BTreeMap::new());
        f.0.insert("level".into(), event.metadata().level().to_string());
        f.0.insert("target".into(), event.metadata().target().to_owned());
        event.record(&mut f);
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(f.0);
    }
}

#[tokio::test(start_paused = true)]
async fn steps_stragglers_and_failures_are_structured_events() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(captured.clone()))
        .unwrap();

    let scope = sundown::Shutdown::new();
    let line = line!() + 1;
    scope.spawn_named("stuck", std::future::pending::<()>());
    let _ = scope
        .spawn_named("parser", async { panic!("bad byte") })
        .await;
    let report = scope.shutdown(Duration::from_secs(1)).await;
    // The process runner emits the report; here the library user does.
    sundown::__private::emit_report(&report);

    let events = captured.0.lock().unwrap().clone();
    let find = |message: &str| {
        events
            .iter()
            .find(|e| e.get("message").map(String::as_str) == Some(message))
            .unwrap_or_else(|| panic!("no {message:?} event in {events:#?}"))
            .clone()
    };
    let failure = find("tracked task failed");
    assert_eq!(failure["target"], "sundown");
    assert_eq!(failure["level"], "ERROR");
    assert_eq!(failure["task"], "parser");
    assert_eq!(failure["failure"], "panicked: bad byte");
    assert!(failure["location"].starts_with(file!()));

    let straggler = find("straggler aborted");
    assert_eq!(straggler["task"], "stuck");
    assert!(straggler["location"].starts_with(&format!("{}:{line}:", file!())));
    assert_eq!(straggler["state"], "running");
    assert!(straggler.contains_key("age_ms"));

    let drain = events
        .iter()
        .find(|e| e.get("step").map(String::as_str) == Some("drain"))
        .expect("a drain step event");
    assert_eq!(drain["hit_deadline"], "true");
    assert!(drain.contains_key("elapsed_ms"));
}
