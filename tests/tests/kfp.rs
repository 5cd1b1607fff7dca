//! The Kubeflow Pipelines client against the KFP stand-in on loopback: the calls a launch makes,
//! and how each kind of failure reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Secret;
use ct_shared::kfp::{KfpClient, KfpError, NewRun, Pipelines, display_name};
use harness::kfp::{Call, Fault, KfpStandIn};
use serde_json::{Value, json};
use std::time::Duration;

fn client(kfp: &KfpStandIn, token: Option<&str>) -> KfpClient {
    KfpClient::new(
        &format!("{}/", kfp.base),
        Some("team-1".into()),
        None,
        token.map(Secret::new),
        Duration::from_secs(1),
    )
    .unwrap()
}

fn new_run(request_id: &str, version: &str, parameters: Value) -> NewRun {
    let Value::Object(parameters) = parameters else {
        panic!("parameters must be an object")
    };
    NewRun {
        display_name: display_name(request_id),
        pipeline_id: "pl-1".into(),
        pipeline_version_id: version.into(),
        experiment_id: None,
        parameters,
    }
}

#[tokio::test]
async fn resolves_the_pipeline_and_its_newest_version_then_creates_and_finds_the_run() {
    let kfp = KfpStandIn::start().await;
    kfp.require_token("kf-token");
    let c = client(&kfp, Some("kf-token"));
    // GIVEN a pipeline named "retrain" whose newest version is v-2
    let pid = c.pipeline_id("retrain").await.unwrap();
    assert_eq!(pid, "pl-1");
    assert_eq!(c.latest_version(&pid).await.unwrap(), "v-2");
    kfp.add_version("v-3");
    assert_eq!(c.latest_version(&pid).await.unwrap(), "v-3");
    // WHEN a run is created for request r1
    assert_eq!(c.find_run(&display_name("r1")).await.unwrap(), None);
    let created = c
        .create_run(&new_run("r1", "v-3", json!({"rows": 190})))
        .await
        .unwrap();
    // THEN KFP has exactly that run, and it can be found again by its name only
    let runs = kfp.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_id, created.run_id);
    assert_eq!(runs[0].display_name, "ct-trigger r1");
    assert_eq!(runs[0].pipeline_version_id, "v-3");
    assert_eq!(runs[0].parameters, json!({"rows": 190}));
    let found = c.find_run("ct-trigger r1").await.unwrap().unwrap();
    assert_eq!(found.run_id, created.run_id);
    assert_eq!(found.pipeline_version_id.as_deref(), Some("v-3"));
    assert_eq!(c.find_run("ct-trigger r2").await.unwrap(), None);
    assert_eq!(c.get_run(&created.run_id).await.unwrap().state, "PENDING");
    // Every call carried the token and the namespace where KFP takes one.
    let seen = kfp.seen();
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer kf-token")),
        "{seen:?}"
    );
    let list = seen
        .iter()
        .find(|s| s.method == "GET" && s.path == "/apis/v2beta1/runs")
        .unwrap();
    assert_eq!(
        list.query.get("namespace").map(String::as_str),
        Some("team-1")
    );
}

#[tokio::test]
async fn each_failure_reads_as_something_a_person_can_act_on() {
    let kfp = KfpStandIn::start().await;
    let c = client(&kfp, None);
    kfp.accept_parameters(&["rows"]);
    let run = new_run("r1", "v-2", json!({"rows": 1}));

    kfp.plan(Call::CreateRun, [Fault::Status(401, "no".into())]);
    assert_eq!(
        c.create_run(&run).await,
        Err(KfpError::AuthNeeded { status: 401 })
    );
    kfp.plan(Call::CreateRun, [Fault::LoginRedirect]);
    assert_eq!(
        c.create_run(&run).await,
        Err(KfpError::AuthNeeded { status: 302 })
    );
    let missing = c
        .create_run(&new_run("r1", "v-9", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(missing, KfpError::NotFound { .. }), "{missing}");
    assert!(
        c.pipeline_id("nope")
            .await
            .unwrap_err()
            .to_string()
            .contains("nope")
    );
    let refused = c
        .create_run(&new_run("r1", "v-2", json!({"learning_rate": 0.1})))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, KfpError::Refused { message } if message.contains("learning_rate")),
        "{refused}"
    );
    kfp.plan(Call::CreateRun, [Fault::Status(503, "down".into())]);
    assert!(c.create_run(&run).await.unwrap_err().is_transient());
    kfp.plan(Call::ListRuns, [Fault::Slow(Duration::from_secs(3))]);
    let slow = c.find_run("ct-trigger r1").await.unwrap_err();
    assert!(
        slow.is_transient() && slow.to_string().contains("no answer"),
        "{slow}"
    );
    assert!(kfp.runs().is_empty(), "no failure created a run");
    // A server that is not there at all.
    let gone = KfpClient::new(
        "http://127.0.0.1:9",
        None,
        None,
        None,
        Duration::from_secs(1),
    )
    .unwrap()
    .find_run("x")
    .await
    .unwrap_err();
    assert!(gone.is_transient(), "{gone}");
}

#[tokio::test]
async fn a_lost_create_answer_is_ambiguous_and_the_run_is_found_by_name() {
    let kfp = KfpStandIn::start().await;
    let c = client(&kfp, None);
    // GIVEN KFP creates the run but the answer is cut off
    kfp.plan(Call::CreateRun, [Fault::CreateThenDrop]);
    let err = c
        .create_run(&new_run("r7", "v-2", json!({})))
        .await
        .unwrap_err();
    // THEN the client cannot tell, so it says "unavailable" (worth retrying) ...
    assert!(err.is_transient(), "{err}");
    // ... and a retry that looks first finds the run instead of making a second.
    let found = c.find_run(&display_name("r7")).await.unwrap().unwrap();
    assert_eq!(kfp.runs().len(), 1);
    assert_eq!(found.run_id, kfp.runs()[0].run_id);
}
