//! ct-local's console, as a newcomer uses it: its HTTP API and errors, ephemeral answers to
//! their user only, the Web API's edits and threads, an expiry, and a quality alarm.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod run_local;

use run_local::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn the_console_answers_json_errors_adds_in_the_background_and_runs_one_seek_at_a_time() {
    let up = Up::start().await;
    ct_shared::tls::install_provider();
    let (http, c) = (reqwest::Client::new(), up.console.clone());
    // The start line: the result plainly, no JSON quotes.
    let first = up
        .printed
        .iter()
        .find(|l| l.starts_with("first seek: "))
        .unwrap();
    assert!(first.starts_with("first seek: posted ("), "{first}");
    assert!(
        up.printed
            .iter()
            .any(|l| l.contains("(the demo's; set DATASETS to use your own)")),
        "{:?}",
        up.printed
    );

    // A favicon, not a 404.
    let icon = http.get(format!("{c}favicon.ico")).send().await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");

    // Bad requests are answered {"error": ...} with a 4xx, whatever went wrong.
    let bad = |body: reqwest::RequestBuilder| async move {
        let r = body.send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = serde_json::from_slice(&r.bytes().await.unwrap())
            .unwrap_or_else(|e| panic!("not JSON ({e})"));
        (
            status,
            body["error"].as_str().unwrap_or_default().to_owned(),
        )
    };
    // An empty Add box is sent as no count: what to enter, not "not null".
    for body in [
        json!({"dataset": "embedding", "count": null}),
        json!({"dataset": "embedding"}),
    ] {
        let (status, error) = bad(http
            .post(format!("{c}api/objects"))
            .header("content-type", "application/json")
            .body(body.to_string()))
        .await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error, "enter how many objects to add, 1 to 5000", "{body}");
    }
    for count in [json!(-5), json!(2.5), json!(0), json!(5001), json!("150")] {
        let (status, error) = bad(http
            .post(format!("{c}api/objects"))
            .header("content-type", "application/json")
            .body(json!({"dataset": "embedding", "count": count}).to_string()))
        .await;
        assert_eq!(status, 400, "{count}: {error}");
        assert!(
            error.contains("whole number from 1 to 5000"),
            "{count}: {error}"
        );
    }
    let (status, error) = bad(http
        .post(format!("{c}api/objects"))
        .header("content-type", "application/json")
        .body(json!({"dataset": "nope", "count": 5}).to_string()))
    .await;
    assert_eq!(
        (status, error.contains("unknown dataset")),
        (400, true),
        "{error}"
    );
    let (status, error) = bad(http
        .post(format!("{c}api/click"))
        .header("content-type", "application/json")
        .body("{not json"))
    .await;
    assert!(
        (400..500).contains(&status) && !error.is_empty(),
        "{status} {error}"
    );
    let (status, error) = bad(http.get(format!("{c}api/seek"))).await;
    assert_eq!(status, 405, "{error}");
    let (status, error) = bad(http.get(format!("{c}api/nothing"))).await;
    assert_eq!(status, 404, "{error}");

    // An Add runs on the server, shows its progress, refuses a second Add meanwhile, and says
    // how many objects it actually added.
    let add = |n: u64| {
        http.post(format!("{c}api/objects"))
            .header("content-type", "application/json")
            .body(json!({"dataset": "faiss", "count": n}).to_string())
            .send()
    };
    let big = tokio::spawn(add(1500));
    let mut seen_progress = false;
    for _ in 0..200 {
        let state: Value = http
            .get(format!("{c}api/state"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        if state["adding"]["progress"]["done"] == false {
            seen_progress = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen_progress, "no Add in progress in /api/state");
    let (status, error) = bad(http
        .post(format!("{c}api/objects"))
        .header("content-type", "application/json")
        .body(json!({"dataset": "embedding", "count": 5}).to_string()))
    .await;
    assert_eq!(status, 409, "{error}");
    assert!(
        error.starts_with("still adding objects to faiss"),
        "{error}"
    );
    let done: Value =
        serde_json::from_slice(&big.await.unwrap().unwrap().bytes().await.unwrap()).unwrap();
    assert_eq!(done["added"], 1500, "{done}");
    assert_eq!(done["summary"], "added 1500 objects to faiss");

    // Two "Run seek now" at once: one seek, one message.
    let before = channel_len(&http, &c).await;
    let seek = || {
        http.post(format!("{c}api/seek"))
            .header("content-type", "application/json")
            .body(json!({}).to_string())
            .send()
    };
    let (a, b) = tokio::join!(seek(), seek());
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    assert_eq!(channel_len(&http, &c).await, before + 1);
    // The seek's metrics were short lines, and the banner's key lines came again after them.
    let reprinted = |up: &Up| {
        let later = up.later();
        let console = later.iter().any(|l| *l == format!("console: {c}"));
        let ask = later
            .iter()
            .any(|l| l.starts_with("ask on a quality signal: curl "));
        console && ask
    };
    for _ in 0..40 {
        if reprinted(&up) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reprinted(&up), "{:?}", up.later());
    let stderr = up.stderr.lock().unwrap().clone();
    assert!(stderr.iter().all(|l| !l.contains("\"_aws\"")), "{stderr:?}");
    assert!(
        stderr
            .iter()
            .any(|l| l.starts_with("[seek] metrics Dataset=faiss: Objects=1510 ")),
        "{stderr:?}"
    );
    // The one seek saw the Add: the demo's 10 and 1500 more in faiss.
    let state: Value = http
        .get(format!("{c}api/state"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    let last = state["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last["body"]["text"]
            .as_str()
            .unwrap()
            .contains("1510 in faiss"),
        "{last}"
    );

    // The /ask line ct-local prints (and the README shows) works as printed, with curl.
    let ask = up
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("ask on a quality signal: "))
        .unwrap_or_else(|| panic!("no /ask line: {:?}", up.printed));
    assert!(ask.starts_with("curl "), "{ask}");
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("{ask} -sS -w ' %{{http_code}}'")])
        .output()
        .expect("sh runs (curl is needed: apt-get install -y curl)");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && said.ends_with(" 201"),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("\"kind\":\"quality\""), "{said}");
    assert_eq!(channel_len(&http, &c).await, before + 2);
    up.stop().await;
}

#[tokio::test]
async fn ephemeral_answers_are_shown_to_their_user_only_and_messages_carry_their_time() {
    let started = millis_now();
    let up = Up::start().await;
    ct_shared::tls::install_provider();
    let (http, c) = (reqwest::Client::new(), up.console.clone());
    let post = |path: &str, body: Value| {
        http.post(format!("{c}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let first = state(&http, &c, Some("U0ANN")).await;
    let question = &first["messages"][0];
    // Each message has the time it was posted.
    let at = question["at"].as_u64().unwrap();
    assert!(
        (started..=millis_now()).contains(&at),
        "{at} not since {started}"
    );
    let train = question["body"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .and_then(|b| b["elements"].as_array())
        .and_then(|e| e.iter().find(|e| e["action_id"] == "train"))
        .cloned()
        .unwrap_or_else(|| panic!("no Train! button: {question}"));
    let click = |user: &str| {
        post(
            "api/click",
            json!({"message_id": question["id"], "action_id": "train", "value": train["value"], "user_id": user}),
        )
    };
    // ann approves; bob, on the same question, is told it was already approved: to him only.
    assert_eq!(click("U0ANN").await.unwrap().status(), 200);
    assert_eq!(click("U0BOB").await.unwrap().status(), 200);
    let ephemeral_of = |s: &Value| s["messages"][0]["ephemeral"].as_array().unwrap().clone();
    let mut bob = Value::Null;
    for _ in 0..50 {
        bob = state(&http, &c, Some("U0BOB")).await;
        if !ephemeral_of(&bob).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answers = ephemeral_of(&bob);
    assert_eq!(answers.len(), 1, "{bob}");
    assert!(
        answers[0]["body"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Already approved by <@U0ANN>"),
        "{bob}"
    );
    let ann = state(&http, &c, Some("U0ANN")).await;
    assert_eq!(ephemeral_of(&ann), Vec::<Value>::new(), "{ann}");
    assert_eq!(
        ephemeral_of(&state(&http, &c, None).await),
        Vec::<Value>::new()
    );
    // The question was replaced for both, and keeps the time it was posted.
    assert_eq!(ann["messages"][0]["edited"], true, "{ann}");
    assert_eq!(ann["messages"][0]["at"], at);

    // A slash command's answer is its sender's too.
    let sent = post(
        "api/slash",
        json!({"text": "/ct-trigger help", "user_id": "U0BOB"}),
    )
    .await
    .unwrap();
    assert_eq!(sent.status(), 200);
    let slash = |s: &Value| s["slash"].as_array().unwrap().clone();
    let bob = state(&http, &c, Some("U0BOB")).await;
    let said = slash(&bob);
    assert_eq!(said.len(), 1, "{bob}");
    assert_eq!(said[0]["command"], "/ct-trigger help");
    assert!(
        said[0]["text"].as_str().unwrap().starts_with("Usage: "),
        "{bob}"
    );
    assert_eq!(
        slash(&state(&http, &c, Some("U0ANN")).await),
        Vec::<Value>::new()
    );
    // A refused command is shown to its sender as well.
    let refused = post(
        "api/slash",
        json!({"text": "/deploy now", "user_id": "U0ANN"}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 400);
    let ann = slash(&state(&http, &c, Some("U0ANN")).await);
    assert_eq!(
        (ann.len(), ann[0]["error"].clone()),
        (1, json!(true)),
        "{ann:?}"
    );
    assert_eq!(slash(&state(&http, &c, Some("U0BOB")).await).len(), 1);

    // The approval's run link leads to a page of the console, which shows the run.
    let mut link = None;
    for _ in 0..100 {
        let s = state(&http, &c, Some("U0ANN")).await;
        link = s["messages"].as_array().unwrap().iter().find_map(|m| {
            let text = m["body"]["blocks"][0]["text"]["text"].as_str()?;
            let start = text.find("<http")? + 1;
            let end = start + text[start..].find('|')?;
            Some(text[start..end].to_owned()).filter(|l| l.contains("#/runs/details/"))
        });
        if link.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let link = link.expect("a Training started message with a run link");
    let (page, id) = link.split_once('#').unwrap();
    assert_eq!(page, format!("{c}kubeflow/"), "{link}");
    let html = http.get(page).send().await.unwrap();
    assert_eq!(html.status(), 200);
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let id = id.strip_prefix("/runs/details/").unwrap();
    let run: Value = serde_json::from_slice(
        &http
            .get(format!("{c}api/kfp/runs/{id}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(run["run_id"], id, "{run}");
    assert_eq!(run["parameters"]["approved_by"], "ann", "{run}");
    up.stop().await;
}

/// `scripts/run --web-api` with a short `REQUEST_TTL` from the environment: the console shows
/// an approved question edited to its outcome with its notices in its thread, and an
/// unanswered one edited to *Expired* by the heartbeat's sweep.
#[tokio::test]
async fn with_the_web_api_the_console_shows_outcomes_threads_and_an_expiry() {
    let up = Up::start_with(
        &["--web-api"],
        &[("REQUEST_TTL", "12s"), ("REMIND_AFTER", "0")],
    )
    .await;
    let c = up.console.clone();
    ct_shared::tls::install_provider();
    let http = reqwest::Client::new();
    let first = state(&http, &c, None).await;
    let question = first["messages"][0].clone();
    assert!(
        question["ts"].is_string(),
        "posted by the Web API: {question}"
    );
    let train = question["body"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .and_then(|b| b["elements"].as_array())
        .and_then(|e| e.iter().find(|e| e["action_id"] == "train"))
        .cloned()
        .unwrap_or_else(|| panic!("no Train! button: {question}"));
    // WHEN ann approves it
    let clicked = http
        .post(format!("{c}api/click"))
        .header("content-type", "application/json")
        .body(json!({"message_id": question["id"], "action_id": "train", "value": train["value"], "user_id": "U0ANN"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), 200);
    // THEN the question shows its outcome without buttons, and Training started is in its thread
    let s = until(&http, &c, 30, |s| {
        let q = &s["messages"][0];
        !has_buttons(q)
            && q["thread"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|r| r["body"].to_string().contains("Training started"))
            })
    })
    .await;
    let q = &s["messages"][0];
    assert!(!has_buttons(q), "{q}");
    assert!(q["body"].to_string().contains("Approved by"), "{q}");
    assert_eq!(q["edited"], true, "{q}");
    let thread = q["thread"].as_array().cloned().unwrap_or_default();
    assert!(
        thread
            .iter()
            .any(|r| r["body"].to_string().contains("Training started")),
        "{thread:?}"
    );
    assert_eq!(
        s["messages"].as_array().unwrap().len(),
        1,
        "nothing else in the channel: {s}"
    );
    // WHEN more data lands and a seek asks again, and nobody answers
    let added = http
        .post(format!("{c}api/objects"))
        .header("content-type", "application/json")
        .body(json!({"dataset": "embedding", "count": 150}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    let sought = http.post(format!("{c}api/seek")).send().await.unwrap();
    assert_eq!(sought.status(), 200);
    let s = until(&http, &c, 5, |s| {
        s["messages"].as_array().is_some_and(|m| m.len() == 2)
    })
    .await;
    assert!(has_buttons(&s["messages"][1]), "a new question: {s}");
    // THEN within its 12 s and a heartbeat (every 10 s), it is edited to Expired, no buttons
    let s = until(&http, &c, 40, |s| !has_buttons(&s["messages"][1])).await;
    let expired = &s["messages"][1];
    assert!(!has_buttons(expired), "{expired}");
    assert!(
        expired["body"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Expired: nobody decided by"),
        "{expired}"
    );
    up.stop().await;
}

/// The console's *Fire a quality alarm*: CloudWatch's state change reaches seek as EventBridge
/// delivers it, and the question names the alarm, its value and threshold; pressed again while
/// that question is pending, it posts nothing.
#[tokio::test]
async fn the_console_fires_a_quality_alarm_that_asks_once_while_pending() {
    let up = Up::start().await;
    let c = up.console.clone();
    ct_shared::tls::install_provider();
    let http = reqwest::Client::new();
    let before = channel_len(&http, &c).await;
    let fire = || http.post(format!("{c}api/alarm")).send();
    let first: Value = json_of(fire().await.unwrap()).await;
    assert_eq!(first["result"], "asked", "{first}");
    let s = until(&http, &c, 5, |s| {
        s["messages"]
            .as_array()
            .is_some_and(|m| m.len() == before + 1)
    })
    .await;
    let asked = s["messages"][before]["body"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        asked.contains("ct-quality-recall") && asked.contains("0.81") && asked.contains("0.85"),
        "{asked}"
    );
    let again: Value = json_of(fire().await.unwrap()).await;
    assert_eq!(again["result"], "held_off", "{again}");
    assert_eq!(channel_len(&http, &c).await, before + 1);
    up.stop().await;
}
