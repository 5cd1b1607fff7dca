//! Fourteen weeks through the real binaries: seek runs each week's EventBridge Scheduled Event,
//! objects arrive between some runs, people approve, decline or ignore the asks, pipeline steps
//! send notices; then `GET /status` shows each dataset's last 12 windows, newest first, in JSON
//! and as a text table. Every week's EMF samples are recorded in `target/metrics/weeks.json`,
//! from which the browser test draws the README's dashboard picture.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_shared::Timestamp;
use harness::World;
use harness::emf::{self, Sample};
use harness::events::{function_url_event, scheduled_event};
use harness::runtime::Function;
use harness::slack_events::{SIGNING_SECRET, block_actions, form, signed_event};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const STACK: &str = "ct-weeks-test";
const TOKEN: &str = "weeks-t0ken-Hq27";
const FORM: &str = "application/x-www-form-urlencoded";
/// Tuesday 25 August 2026, 00:00 UTC: the first window (the default schedule runs on Tuesdays).
const FIRST_WEEK: i64 = 1_787_616_000;
const WEEK: i64 = 7 * 24 * 3600;
const THRESHOLDS: [(&str, u64); 2] = [("embedding", 40), ("text", 25)];

/// What a person does with a week's ask.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    /// Nothing was asked (or nobody answered).
    None,
    Train,
    Nope,
}

/// (new embedding objects, new text objects, the answer to the week's ask)
const PLAN: [(usize, usize, Answer); 14] = [
    (50, 10, Answer::Train), // 50 > 0 + 40: asked, approved
    (10, 5, Answer::None),   // no need
    (20, 0, Answer::None),   // 80, not > 50 + 40: no need
    (15, 30, Answer::Nope),  // both over: asked, declined
    (0, 0, Answer::None),    // still over: asked again, nobody answers
    (5, 5, Answer::Train),   // asked (supersedes last week's), approved
    (0, 0, Answer::None),
    (30, 0, Answer::None), // 130, not > 100 + 40
    (20, 20, Answer::Train),
    (0, 0, Answer::None),
    (10, 30, Answer::Train), // text alone: 100 > 70 + 25
    (5, 5, Answer::None),
    (45, 0, Answer::Nope),
    (1, 1, Answer::Train),
];

/// One dataset in one window, as the test expects `/status` to show it.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    at: i64,
    seeked: u64,
    trained: u64,
    asked: bool,
}

fn week_time(week: usize) -> i64 {
    FIRST_WEEK + WEEK * week as i64
}

/// Lines printed since `from`, and the new mark.
fn since(logs: &Arc<Mutex<Vec<String>>>, from: &mut usize) -> Vec<String> {
    let all = logs.lock().unwrap();
    let new = all[*from..].to_vec();
    *from = all.len();
    new
}

fn status_event(accept: &str) -> Value {
    let bearer = format!("Bearer {TOKEN}");
    function_url_event(
        "GET",
        "/status",
        &[("authorization", bearer.as_str()), ("accept", accept)],
        b"",
        false,
    )
}

#[tokio::test]
async fn fourteen_weeks_show_as_the_last_twelve_windows_per_dataset_in_status() {
    // GIVEN the three binaries, as deployed, against one bucket, table and Slack
    let w = World::new().await;
    let stack = ("STACK_NAME".to_owned(), STACK.to_owned());
    let mut seek_env = w.seek_env("embedding=train/embedding/:40,text=train/text/:25", 100);
    seek_env.push(stack.clone());
    let mut actions_env = w.actions_env();
    actions_env.push(stack.clone());
    let send_env = vec![
        ("STATE_TABLE".to_owned(), w.table.clone()),
        ("SLACK_WEBHOOK_URL".to_owned(), w.slack.webhook_url()),
        ("SEND_URL_AUTH".to_owned(), "NONE".to_owned()),
        ("SEND_TOKEN".to_owned(), TOKEN.to_owned()),
        stack,
    ];
    let (seek, actions, send) = tokio::join!(
        Function::start("seek", seek_env),
        Function::start("actions", actions_env),
        Function::start("send", send_env),
    );
    let marks = &mut [0usize; 3];

    let mut seeked = [0u64; 2];
    let mut trained = [0u64; 2];
    let mut expected: Vec<[Row; 2]> = Vec::new();
    let mut recorded: Vec<(usize, i64, Vec<Sample>)> = Vec::new();
    let mut pending: Option<String> = None;
    let mut decided: Option<String> = None;
    let response_url = w.slack.response_url("weeks");
    let click = |choice: &str, id: &str, who: (&str, &str), secret: &str| {
        let body = form(&block_actions(choice, id, who, &response_url));
        signed_event(secret, Timestamp::now().secs(), &body, FORM)
    };

    for (week, (add_embedding, add_text, answer)) in PLAN.into_iter().enumerate() {
        // GIVEN the objects that arrived this week
        w.put("train/embedding/", seeked[0] as usize, add_embedding)
            .await;
        w.put("train/text/", seeked[1] as usize, add_text).await;
        seeked[0] += add_embedding as u64;
        seeked[1] += add_text as u64;
        let asked = (0..2).any(|i| seeked[i] > trained[i] + THRESHOLDS[i].1);
        expected.push(std::array::from_fn(|i| Row {
            at: week_time(week),
            seeked: seeked[i],
            trained: trained[i],
            asked,
        }));

        // WHEN the week's Scheduled Event reaches seek
        let time = Timestamp::from_secs(week_time(week)).rfc3339();
        let outcome = seek
            .invoke(&format!("seek-{week}"), scheduled_event(&time))
            .await
            .unwrap_or_else(|e| panic!("week {week}: seek failed: {e}"));
        assert_eq!(
            outcome["verdict"],
            if asked { "ask" } else { "no_need" },
            "week {week}: {outcome}"
        );
        let request = outcome["request_id"].as_str().map(str::to_owned);
        assert_eq!(request.is_some(), asked, "week {week}");

        // AND someone answers the ask (or not); now and then a click is refused
        if let (Some(id), Answer::Train | Answer::Nope) = (&request, answer) {
            let choice = if answer == Answer::Train {
                "train"
            } else {
                "nope"
            };
            let resp = actions
                .invoke(
                    &format!("click-{week}"),
                    click(choice, id, ("U0ANN", "ann"), SIGNING_SECRET),
                )
                .await
                .expect("actions answered");
            assert_eq!(resp["statusCode"], 200, "week {week}: {resp}");
            if answer == Answer::Train {
                trained = seeked;
                let notice = json!({"text": format!("training for week {week} finished")});
                let bearer = format!("Bearer {TOKEN}");
                let sent = send
                    .invoke(
                        &format!("notice-{week}"),
                        function_url_event(
                            "POST",
                            "/send",
                            &[
                                ("content-type", "application/json"),
                                ("authorization", bearer.as_str()),
                            ],
                            notice.to_string().as_bytes(),
                            false,
                        ),
                    )
                    .await
                    .expect("send answered");
                assert_eq!(sent["statusCode"], 204, "week {week}: {sent}");
            }
            decided = Some(id.clone());
        } else if let Some(id) = &request {
            assert_eq!(answer, Answer::None, "week {week}: nothing to answer");
            pending = Some(id.clone());
        }
        if week % 4 == 2 {
            // a forged click, and a late click on a request decided before
            let forged = actions
                .invoke(
                    &format!("forged-{week}"),
                    click("train", "r-x", ("U0EVE", "eve"), "forged"),
                )
                .await
                .expect("actions answered");
            assert_eq!(forged["statusCode"], 401, "{forged}");
            if let Some(id) = &decided {
                let late = actions
                    .invoke(
                        &format!("late-{week}"),
                        click("nope", id, ("U0BOB", "bob"), SIGNING_SECRET),
                    )
                    .await
                    .expect("actions answered");
                assert_eq!(late["statusCode"], 200, "{late}");
            }
        }
        if week == 5 {
            // the ask nobody answered in week 4 was superseded by this week's
            let old = pending.take().expect("week 4 left an ask pending");
            let resp = actions
                .invoke(
                    "superseded",
                    click("train", &old, ("U0ANN", "ann"), SIGNING_SECRET),
                )
                .await
                .expect("actions answered");
            assert_eq!(resp["statusCode"], 200, "{resp}");
        }

        // the week's metrics, from all three functions
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let lines: Vec<String> = [&seek, &actions, &send]
            .iter()
            .zip(marks.iter_mut())
            .flat_map(|(f, mark)| since(&f.logs, mark))
            .collect();
        let samples = emf::samples(&lines);
        for (i, (name, threshold)) in THRESHOLDS.iter().enumerate() {
            let d = [("Dataset", *name)];
            assert_eq!(emf::total(&samples, "Objects", &d), Some(seeked[i] as f64));
            let new = expected[week][i].seeked - expected[week][i].trained;
            assert_eq!(emf::total(&samples, "NewObjects", &d), Some(new as f64));
            assert_eq!(
                emf::total(&samples, "Threshold", &d),
                Some(*threshold as f64)
            );
        }
        assert_eq!(emf::total(&samples, "Asked", &[]), Some(f64::from(asked)));
        recorded.push((week, week_time(week), samples));
    }
    emf::record_weeks("weeks", &recorded);

    // WHEN an operator asks for the status, as JSON and as text
    let json_status = send
        .invoke("status-json", status_event("application/json"))
        .await
        .unwrap();
    assert_eq!(json_status["statusCode"], 200, "{json_status}");
    let body: Value = serde_json::from_str(json_status["body"].as_str().unwrap()).unwrap();
    let text_status = send
        .invoke("status-text", status_event("text/plain"))
        .await
        .unwrap();
    assert_eq!(text_status["statusCode"], 200, "{text_status}");
    let text = text_status["body"].as_str().unwrap().to_owned();

    // THEN each dataset shows its last 12 windows, newest first, with what was seen, trained
    // and asked at the time
    let datasets = body["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 2, "{body}");
    for (i, (name, _)) in THRESHOLDS.iter().enumerate() {
        let want: Vec<Row> = expected
            .iter()
            .rev()
            .take(12)
            .map(|r| r[i].clone())
            .collect();
        let d = datasets.iter().find(|d| d["name"] == *name).unwrap();
        let got: Vec<Row> = d["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| Row {
                at: Timestamp::parse_rfc3339(h["at"].as_str().unwrap())
                    .unwrap()
                    .secs(),
                seeked: h["seeked"].as_u64().unwrap(),
                trained: h["trained"].as_u64().unwrap(),
                asked: h["asked"].as_bool().unwrap(),
            })
            .collect();
        assert_eq!(got, want, "{name}: JSON history");
        assert_eq!(got.first().map(|r| r.at), Some(week_time(13)));
        assert_eq!(d["seeked"], seeked[i]);
        assert_eq!(d["trained"], trained[i]);

        // AND the text form has the same rows as a table under the dataset
        let table = table_of(&text, name);
        assert_eq!(table, want, "{name}: text table\n{text}");
    }
}

/// The rows of a dataset's table in the text status: the lines after its header, up to the
/// next line that is not a row.
fn table_of(text: &str, dataset: &str) -> Vec<Row> {
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(&format!("{dataset} (")));
    lines
        .next()
        .unwrap_or_else(|| panic!("no {dataset} in\n{text}"));
    let header = lines.next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["window", "seeked", "trained", "asked"],
        "{text}"
    );
    lines
        .map_while(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let [at, seeked, trained, asked] = cells[..] else {
                return None;
            };
            Some(Row {
                at: Timestamp::parse_rfc3339(at)?.secs(),
                seeked: seeked.parse().ok()?,
                trained: trained.parse().ok()?,
                asked: match asked {
                    "yes" => true,
                    "no" => false,
                    _ => return None,
                },
            })
        })
        .collect()
}
