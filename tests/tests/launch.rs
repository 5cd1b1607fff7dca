//! Train! starts the Kubeflow Pipelines run: the real actions binary behind a Runtime API
//! stand-in, queueing launch jobs to itself through a Lambda Invoke API stand-in, against moto,
//! a Slack stand-in and a KFP stand-in that fails on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use harness::kfp::{Call, Fault, KfpStandIn};
use harness::launch_rig::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn approval_starts_exactly_one_run_with_the_newest_version_and_filled_parameters() {
    let mut rig = Rig::start(true, 1).await;
    let id = rig.asked().await;
    // WHEN ann approves
    assert_eq!(rig.click("train", &id, "m").await, 200);
    let outcomes = rig.invoke.settle(Duration::from_secs(30)).await;
    // THEN one launch job ran and started one run, as configured
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let result = outcomes[0].1.clone().expect("the job succeeded");
    assert_eq!(result["launch"], "started", "{result}");
    let runs = rig.kfp.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run.display_name, format!("ct-trigger {id}"));
    assert_eq!(
        (run.pipeline_id.as_str(), run.pipeline_version_id.as_str()),
        ("pl-1", "v-2")
    );
    assert_eq!(run.experiment_id.as_deref(), Some("exp-1"));
    assert_eq!(
        run.parameters,
        json!({"rows": 150, "fresh": 150, "tag": format!("ct-{id} by ann"), "epochs": 3})
    );
    // ... the channel says so once, with the run's page; no Kubeflow URL notice
    let channel = rig.channel();
    let link = format!("{}/#/runs/details/{}", rig.kfp.base, run.run_id);
    assert_eq!(channel.len(), 2, "{channel:?}");
    assert!(
        channel[1].starts_with(&format!(
            "Training started: {link} (for the question of <!date^"
        )),
        "{}",
        channel[1]
    );
    // ... and the approval message names its run
    let replies = rig.w.slack.responses("m");
    assert_eq!(replies.len(), 2);
    assert!(
        replies[0].text().contains("Approved by <@U0ANN>"),
        "{}",
        replies[0].text()
    );
    assert!(
        replies[1]
            .text()
            .ends_with(&format!("Approved by <@U0ANN> · run {}", run.run_id)),
        "{}",
        replies[1].text()
    );
    // ... shown by /status with its link
    let status = rig.status().await;
    assert_eq!(status["latest_run"]["request_id"], id.as_str(), "{status}");
    assert_eq!(status["latest_run"]["launch"], "started");
    assert_eq!(status["latest_run"]["run_id"], run.run_id.as_str());
    assert_eq!(status["latest_run"]["run_state"], "PENDING");
    assert_eq!(status["latest_run"]["link"], link.as_str());
    // ... recorded on the request
    let pk = format!("request#{id}");
    assert_eq!(
        rig.w.string(&pk, "launch_state").await.as_deref(),
        Some("started")
    );
    assert_eq!(rig.w.string(&pk, "run_id").await, Some(run.run_id.clone()));
    assert_eq!(
        rig.w.string(&pk, "run_version").await.as_deref(),
        Some("v-2")
    );
    rig.stop().await;
}

#[tokio::test]
async fn duplicate_and_concurrent_launch_jobs_make_one_run() {
    // GIVEN three warm instances, and KFP slow to create, so jobs overlap
    let mut rig = Rig::start(true, 3).await;
    let id = rig.asked().await;
    rig.kfp
        .plan(Call::CreateRun, [Fault::Slow(Duration::from_millis(700))]);
    assert_eq!(rig.click("train", &id, "m").await, 200);
    let queued = rig.invoke.seen()[0].payload.clone();
    // WHEN the same job is delivered again, and two other jobs for the request arrive at once
    let mut other = queued.clone();
    other["ct_trigger_launch"]["job_id"] = Value::from("another-job");
    let mut third = queued.clone();
    third["ct_trigger_launch"]["job_id"] = Value::from("third-job");
    let rx = [
        rig.runtime.enqueue("dup-1", queued.clone()),
        rig.runtime.enqueue("dup-2", other),
        rig.runtime.enqueue("dup-3", third),
    ];
    let mut results = Vec::new();
    for (i, r) in rx.into_iter().enumerate() {
        match r.await.unwrap() {
            Ok(v) => results.push(v),
            // The same job delivered twice at once: one of the two is told to come back later.
            Err(e) if i == 0 => {
                let text = e.to_string();
                assert!(text.contains("another delivery of launch job"), "{text}");
            }
            Err(e) => panic!("job {i} failed: {e}"),
        }
    }
    rig.invoke.settle(Duration::from_secs(30)).await;
    // ... and once more, after everything settled
    let late = rig
        .runtime
        .invoke("dup-4", queued, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    // THEN one run and one "Training started", whoever won
    assert_eq!(rig.kfp.runs().len(), 1, "{results:?}");
    assert_eq!(rig.kfp.create_calls(), 1);
    assert_eq!(started_messages(&rig.channel()), 1, "{:?}", rig.channel());
    assert_eq!(late["launch"], "already_started", "{late}");
    rig.stop().await;
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_found_by_the_retry_and_still_one_run() {
    let mut rig = Rig::start(true, 1).await;
    let id = rig.asked().await;
    // GIVEN KFP creates the run and then drops the connection
    rig.kfp.plan(Call::CreateRun, [Fault::CreateThenDrop]);
    assert_eq!(rig.click("train", &id, "m").await, 200);
    let outcomes = rig.invoke.settle(Duration::from_secs(30)).await;
    // THEN the next attempt finds it by name: one create, one run, one notice
    assert_eq!(outcomes[0].1.as_ref().unwrap()["launch"], "started");
    assert_eq!(rig.kfp.create_calls(), 1);
    assert_eq!(rig.kfp.runs().len(), 1);
    assert_eq!(started_messages(&rig.channel()), 1);
    rig.stop().await;
}

/// Each failure → the right reason in Slack after the retries, no run; then Retry → one run.
#[tokio::test]
async fn failures_are_explained_and_retry_starts_one_run() {
    struct Case {
        name: &'static str,
        arrange: fn(&KfpStandIn),
        heal: fn(&KfpStandIn),
        reason: &'static str,
        creates: usize,
    }
    let cases = [
        Case {
            name: "401",
            arrange: |k| k.plan(Call::Any, [Fault::Status(401, "who are you".into())]),
            heal: |_| {},
            reason: "Kubeflow needs authentication (HTTP 401)",
            creates: 0,
        },
        Case {
            name: "login redirect",
            arrange: |k| k.plan(Call::Any, [Fault::LoginRedirect]),
            heal: |_| {},
            reason: "Kubeflow needs authentication (HTTP 302)",
            creates: 0,
        },
        Case {
            name: "404",
            arrange: |k| {
                k.plan(
                    Call::GetPipeline,
                    [Fault::Status(404, "no such pipeline".into())],
                )
            },
            heal: |_| {},
            reason: "pipeline \"retrain\" was not found",
            creates: 0,
        },
        Case {
            name: "400",
            arrange: |k| k.accept_parameters(&["epochs"]),
            heal: |k| k.accept_parameters(&[]),
            reason: "refused the run's parameters: unknown input parameter",
            creates: 1,
        },
        Case {
            name: "500",
            arrange: |k| {
                k.plan(
                    Call::CreateRun,
                    (0..3).map(|_| Fault::Status(500, "internal".into())),
                )
            },
            heal: |_| {},
            reason: "Kubeflow Pipelines is unavailable (HTTP 500)",
            creates: 3,
        },
    ];
    for case in cases {
        let mut rig = Rig::start(true, 1).await;
        let id = rig.asked().await;
        (case.arrange)(&rig.kfp);
        assert_eq!(rig.click("train", &id, "m").await, 200, "{}", case.name);
        let outcomes = rig.invoke.settle(Duration::from_secs(60)).await;
        let result = outcomes[0].1.clone().expect("the job itself succeeds");
        assert_eq!(result["launch"], "failed", "{}: {result}", case.name);
        // THEN no run, and one message with the reason and a Retry button
        assert!(rig.kfp.runs().is_empty(), "{}", case.name);
        assert_eq!(rig.kfp.create_calls(), case.creates, "{}", case.name);
        let failures: Vec<_> = rig
            .w
            .slack
            .channel()
            .into_iter()
            .filter(|p| p.text().starts_with("Could not start the training run: "))
            .collect();
        assert_eq!(failures.len(), 1, "{}: {:?}", case.name, rig.channel());
        assert!(
            failures[0].text().contains(case.reason),
            "{}: {}",
            case.name,
            failures[0].text()
        );
        let button = &failures[0].body["blocks"][1]["elements"][0];
        assert_eq!(button["value"], format!("retry:{id}"), "{}", case.name);
        assert_eq!(
            rig.w
                .string(&format!("request#{id}"), "launch_state")
                .await
                .as_deref(),
            Some("failed")
        );
        // WHEN KFP is healthy again and someone presses Retry (twice: a double tap)
        (case.heal)(&rig.kfp);
        assert_eq!(rig.click("retry", &id, "f").await, 200, "{}", case.name);
        rig.invoke.settle(Duration::from_secs(60)).await;
        assert_eq!(rig.click("retry", &id, "f2").await, 200, "{}", case.name);
        rig.invoke.settle(Duration::from_secs(60)).await;
        let status = rig.status().await;
        assert_eq!(
            status["latest_run"]["launch"], "started",
            "{}: {status}",
            case.name
        );
        // THEN exactly one run, announced once; the second press is told it already started
        assert_eq!(rig.kfp.runs().len(), 1, "{}", case.name);
        assert_eq!(
            started_messages(&rig.channel()),
            1,
            "{}: {:?}",
            case.name,
            rig.channel()
        );
        let second = rig.w.slack.responses("f2");
        assert_eq!(second.len(), 1, "{}", case.name);
        assert!(
            second[0].text().starts_with("Training already started"),
            "{}",
            second[0].text()
        );
        assert_eq!(rig.launch_jobs(), 2, "{}: approval + one retry", case.name);
        rig.stop().await;
    }
}

#[tokio::test]
async fn nope_launches_nothing() {
    let mut rig = Rig::start(true, 1).await;
    let id = rig.asked().await;
    assert_eq!(rig.click("nope", &id, "m").await, 200);
    // A Retry on a declined request is refused too.
    assert_eq!(rig.click("retry", &id, "r").await, 200);
    rig.invoke.settle(Duration::from_secs(10)).await;
    assert!(rig.invoke.seen().is_empty());
    assert!(rig.kfp.seen().is_empty());
    assert_eq!(
        rig.channel().len(),
        1,
        "only the question: {:?}",
        rig.channel()
    );
    assert!(
        rig.w.slack.responses("r")[0]
            .text()
            .contains("not approved")
    );
    rig.stop().await;
}

#[tokio::test]
async fn without_kfp_settings_train_posts_the_kubeflow_url_as_before() {
    let mut rig = Rig::start(false, 1).await;
    let id = rig.asked().await;
    assert_eq!(rig.click("train", &id, "m").await, 200);
    rig.invoke.settle(Duration::from_secs(10)).await;
    assert!(rig.invoke.seen().is_empty());
    assert!(rig.kfp.seen().is_empty());
    let channel = rig.channel();
    assert_eq!(channel.len(), 2);
    assert_eq!(
        channel[1],
        format!("Here is Kubeflow URL: {}/", rig.kfp.base)
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_launch_that_cannot_be_queued_says_so_with_retry() {
    let mut rig = Rig::start(true, 1).await;
    let id = rig.asked().await;
    // GIVEN the Lambda API refuses the async invocation
    rig.invoke.refuse(Some(500));
    assert_eq!(rig.click("train", &id, "m").await, 200);
    rig.invoke.refuse(None);
    // THEN the decision stands and the channel offers Retry at once
    assert_eq!(
        rig.w
            .string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("approved")
    );
    let channel = rig.channel();
    assert!(
        channel
            .last()
            .unwrap()
            .starts_with("Could not start the training run: the launch could not be queued"),
        "{channel:?}"
    );
    // WHEN Retry is pressed with the Lambda API back
    assert_eq!(rig.click("retry", &id, "f").await, 200);
    rig.invoke.settle(Duration::from_secs(30)).await;
    assert_eq!(rig.kfp.runs().len(), 1);
    assert_eq!(started_messages(&rig.channel()), 1);
    rig.stop().await;
}

#[tokio::test]
async fn retry_follows_approvers_a_refused_press_queues_nothing() {
    // GIVEN APPROVERS=U0ANN and an approved request whose launch could not be queued
    let mut rig = Rig::start_with(true, 1, &[("APPROVERS", "U0ANN")]).await;
    let id = rig.asked().await;
    rig.invoke.refuse(Some(500));
    assert_eq!(rig.click("train", &id, "m").await, 200);
    rig.invoke.refuse(None);
    let queued = rig.launch_jobs();
    assert!(
        rig.channel()
            .last()
            .unwrap()
            .starts_with("Could not start the training run"),
        "{:?}",
        rig.channel()
    );
    // WHEN eve, not an approver, presses Retry
    rig.who = ("U0EVE", "eve");
    assert_eq!(rig.click("retry", &id, "eve").await, 200);
    // THEN only she is told, and no launch job is queued, no run started
    let told = &rig.w.slack.responses("eve")[0].body;
    assert_eq!(told["response_type"], "ephemeral");
    assert_eq!(told["text"], "Only <@U0ANN> can approve training.");
    assert_eq!(rig.launch_jobs(), queued, "no launch job for eve");
    rig.invoke.settle(Duration::from_secs(30)).await;
    assert!(rig.kfp.runs().is_empty());
    assert_eq!(started_messages(&rig.channel()), 0);
    // WHEN ann presses it, the run starts once
    rig.who = ANN;
    assert_eq!(rig.click("retry", &id, "ann").await, 200);
    rig.invoke.settle(Duration::from_secs(30)).await;
    assert_eq!(rig.kfp.runs().len(), 1);
    assert_eq!(started_messages(&rig.channel()), 1);
    let lines = rig.stop().await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("refused a click") && l.contains("U0EVE")),
        "the refusal is logged with eve's id"
    );
}

#[tokio::test]
async fn a_job_retried_after_its_invocation_timed_out_finds_the_run_it_made_and_announces_once() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut rig = Rig::start(true, 1).await;
    let id = rig.asked().await;
    // GIVEN an approval whose launch job is refused by Lambda, so we can play it ourselves
    rig.invoke.refuse(Some(500));
    assert_eq!(rig.click("train", &id, "m").await, 200);
    rig.invoke.refuse(None);
    // ... and a first delivery that created the run, then ran out of time before recording it:
    // its lease (until its deadline) is over, the run exists in KFP, nothing was announced.
    let first = rig.kfp.add_run(&format!("ct-trigger {id}"), Some("exp-1"));
    let client = aws_sdk_dynamodb::Client::new(&rig.w.sdk);
    client
        .update_item()
        .table_name(&rig.w.table)
        .key("pk", AttributeValue::S(format!("request#{id}")))
        .update_expression("SET launch_state = :l, launch_owner = :o, launch_until = :u")
        .expression_attribute_values(":l", AttributeValue::S("launching".into()))
        .expression_attribute_values(":o", AttributeValue::S("job-1".into()))
        .expression_attribute_values(":u", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    // WHEN Lambda retries the same job
    let job = json!({"ct_trigger_launch": {"request_id": id, "job_id": "job-1", "origin": {"kind": "approval"}}});
    let retried = rig
        .runtime
        .invoke("retry-1", job.clone(), Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    // THEN it takes over, finds that run instead of creating another, and announces it once
    assert_eq!(retried["launch"], "started", "{retried}");
    assert_eq!(retried["run_id"], first.as_str());
    assert_eq!(rig.kfp.runs().len(), 1);
    assert_eq!(rig.kfp.create_calls(), 0);
    assert_eq!(started_messages(&rig.channel()), 1);
    // ... and a further retry of it changes nothing
    let again = rig
        .runtime
        .invoke("retry-2", job, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again["launch"], "already_started", "{again}");
    assert_eq!(started_messages(&rig.channel()), 1);
    rig.stop().await;
}

/// The launch job's writes (take the launch and mark it announced, `UpdateItem`s; record the run
/// and move the trained baseline with it, a `TransactWriteItems` after the click's decision),
/// each under every fault, and with the answer lost past every retry, through a fault-injecting
/// DynamoDB proxy in front of actions: one run, announced once, the launch recorded as started
/// and the baseline at the approved snapshot.
#[tokio::test]
async fn launch_writes_that_lose_their_answers_still_make_one_run_announced_once() {
    use harness::dynamo_proxy::{DynamoProxy, Fault};
    let mut cases: Vec<(&str, usize, Fault, usize)> = [
        ("UpdateItem", 0),
        ("TransactWriteItems", 1),
        ("UpdateItem", 1),
    ]
    .into_iter()
    .flat_map(|(op, pass)| Fault::ALL.map(|f| (op, pass, f, 1)))
    .collect();
    cases.extend([
        ("UpdateItem", 0, Fault::CommitThenLose, 10),
        ("TransactWriteItems", 1, Fault::CommitThenLose, 10),
    ]);
    for (op, pass, fault, n) in cases {
        let case = format!("{op} after {pass}: {fault:?} x{n}");
        let proxy = DynamoProxy::in_front_of_moto().await;
        let (k, v) = proxy.env();
        let mut rig = Rig::start_with(true, 1, &[(k.as_str(), v.as_str())]).await;
        let id = rig.asked().await;
        proxy.fail_after(op, pass, fault, n);
        assert_eq!(rig.click("train", &id, "m").await, 200, "{case}");
        rig.invoke.settle(Duration::from_secs(60)).await;
        assert!(proxy.injected() > 0, "{case}: no fault was injected");
        proxy.heal();
        assert_eq!(rig.kfp.runs().len(), 1, "{case}");
        assert_eq!(
            started_messages(&rig.channel()),
            1,
            "{case}: {:?}",
            rig.channel()
        );
        let status = rig.status().await;
        assert_eq!(
            status["latest_run"]["launch"], "started",
            "{case}: {status}"
        );
        assert_eq!(
            rig.w.number("dataset#embedding", "trained").await,
            Some(150),
            "{case}"
        );
        rig.stop().await;
    }
}

/// The decision committed, but every answer after it was lost or late, past actions' read-back:
/// ann was answered 503 and no launch was queued. Her next press hears it is approved and
/// queues the missing launch: one run, announced once; a further press starts nothing.
#[tokio::test]
async fn a_press_on_an_approval_whose_launch_was_never_queued_starts_it_once() {
    use harness::dynamo_proxy::{DynamoProxy, Fault};
    let proxy = DynamoProxy::in_front_of_moto().await;
    let (k, v) = proxy.env();
    let mut rig = Rig::start_with(true, 1, &[(k.as_str(), v.as_str())]).await;
    let id = rig.asked().await;
    // GIVEN Train! commits unheard, and every read after it is slow past the budgets (the
    // click reads the request and the newest request's id first; with Kubeflow Pipelines the
    // decision does not move the baseline, so it reads no dataset)
    proxy.fail_next("TransactWriteItems", Fault::CommitThenLose, 1);
    proxy.fail_after("GetItem", 2, Fault::Slow, 50);
    assert_eq!(rig.click("train", &id, "m").await, 503);
    proxy.heal();
    assert_eq!(
        rig.w
            .string(&format!("request#{id}"), "status")
            .await
            .as_deref(),
        Some("approved"),
        "the decision committed"
    );
    assert_eq!(rig.launch_jobs(), 0, "no launch was queued");
    // WHEN ann presses again, after the deciding handling's moment has passed
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(rig.click("train", &id, "again").await, 200);
    rig.invoke.settle(Duration::from_secs(60)).await;
    // THEN she is told it is approved and that the run is being started; one run, once
    let told = rig.w.slack.responses("again");
    let text = told[0].text();
    assert!(
        text.starts_with("Already approved by <@U0ANN>")
            && text.ends_with("No training run had started for it, so one is being started now."),
        "{text}"
    );
    assert_eq!(rig.kfp.runs().len(), 1);
    assert_eq!(started_messages(&rig.channel()), 1);
    // AND a further press starts nothing
    assert_eq!(rig.click("train", &id, "third").await, 200);
    rig.invoke.settle(Duration::from_secs(30)).await;
    assert_eq!(rig.launch_jobs(), 1);
    assert_eq!(rig.kfp.runs().len(), 1);
    assert!(
        !rig.w.slack.responses("third")[0]
            .text()
            .contains("being started now")
    );
    rig.stop().await;
}
