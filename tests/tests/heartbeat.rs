//! The heartbeat: the real seek binary answers the heartbeat schedule's event with the age of
//! the last successful seek (`LastSeekAge`), and the template's alarm, evaluated the way
//! CloudWatch documents it, stays quiet while weekly seeks run on time and reaches a person
//! within a day of a missed run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::types::AttributeValue;
use ct_shared::Timestamp;
use harness::World;
use harness::emf;
use harness::events::scheduled_event;
use harness::runtime::Function;
use serde_json::Value;

const STACK: &str = "ct-heartbeat-test";
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;

fn template() -> serde_yaml::Value {
    let text = std::fs::read_to_string(harness::repo_root().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// The heartbeat schedule's event, as template.yaml's `Input` renders it.
fn heartbeat_event(time: &str) -> Value {
    let input =
        template()["Resources"]["SeekFunction"]["Properties"]["Events"]["Heartbeat"]["Properties"]
            ["Input"]
            .as_str()
            .expect("a Heartbeat schedule with an Input")
            .replace("<aws.scheduler.scheduled-time>", time);
    serde_json::from_str(&input).expect("the Input is JSON")
}

fn ages(f: &Function, from: usize) -> Vec<f64> {
    let lines = f.logs.lock().unwrap()[from..].to_vec();
    emf::samples(&lines)
        .into_iter()
        .filter(|s| s.name == "LastSeekAge")
        .inspect(|s| {
            assert_eq!(s.unit, "Seconds");
            assert_eq!(s.dimensions, [("Stack".to_owned(), STACK.to_owned())]);
        })
        .map(|s| s.value)
        .collect()
}

async fn beat(f: &Function, id: &str) -> (Value, Vec<f64>) {
    let from = f.logs.lock().unwrap().len();
    let now = Timestamp::now().rfc3339();
    let answer = f
        .invoke(id, heartbeat_event(&now))
        .await
        .unwrap_or_else(|e| panic!("heartbeat failed: {e}"));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    (answer, ages(f, from))
}

#[tokio::test]
async fn the_seek_binary_reports_how_long_ago_seek_last_succeeded() {
    // GIVEN a new stack: no seek has run
    let w = World::new().await;
    w.put("train/embedding/", 0, 5).await;
    let mut env = w.seek_env("embedding=train/embedding/", 100);
    env.push(("STACK_NAME".into(), STACK.into()));
    let seek = Function::start("seek", env).await;

    // WHEN the first heartbeat comes: it starts the clock, counts nothing and posts nothing
    let (answer, emitted) = beat(&seek, "b1").await;
    assert_eq!(answer["window"], Value::Null, "{answer}");
    assert!(answer["age_seconds"].as_i64().unwrap() <= 2, "{answer}");
    assert_eq!(emitted.len(), 1);
    assert!(emitted[0] <= 2.0);
    assert!(w.slack.received().is_empty(), "a heartbeat posts nothing");
    assert!(w.item("dataset#embedding").await.is_none(), "nor counts");

    // WHEN the weekly seek succeeds, it emits age 0, and the next beat names its window
    let from = seek.logs.lock().unwrap().len();
    let outcome = seek
        .invoke("s1", scheduled_event("2026-11-24T00:00:00Z"))
        .await
        .expect("seek succeeded");
    assert_eq!(outcome["result"], "posted", "{outcome}");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(ages(&seek, from), [0.0]);
    let (answer, emitted) = beat(&seek, "b2").await;
    assert_eq!(
        answer["window"], "scheduled#2026-11-24T00:00:00Z",
        "{answer}"
    );
    assert!(emitted[0] <= 2.0, "{emitted:?}");

    // WHEN the last success was 8 days ago (the heartbeat item as a success then left it)
    let eight_days_ago = Timestamp::now().secs() - 8 * DAY;
    aws_sdk_dynamodb::Client::new(&w.sdk)
        .put_item()
        .table_name(&w.table)
        .item("pk", AttributeValue::S("heartbeat".into()))
        .item("since", AttributeValue::N(eight_days_ago.to_string()))
        .item(
            "window",
            AttributeValue::S("scheduled#2026-11-17T00:00:00Z".into()),
        )
        .send()
        .await
        .unwrap();
    let (answer, emitted) = beat(&seek, "b3").await;

    // THEN the beat reports 8 days, over the alarm's threshold
    let age = emitted[0];
    assert!((age - (8 * DAY) as f64).abs() <= 2.0, "{age}");
    assert_eq!(answer["age_seconds"].as_f64(), Some(age));
    let alarm = Alarm::from_template();
    assert!(alarm.breaching(Some(age)), "8 days must breach {alarm:?}");
    assert!(
        !alarm.breaching(Some((7 * DAY + 6 * HOUR) as f64)),
        "{alarm:?}"
    );

    // AND a retry of the delivery that posted (its answer lost) counts as a success again
    let outcome = seek
        .invoke("s1", scheduled_event("2026-11-24T00:00:00Z"))
        .await
        .expect("seek succeeded");
    assert_eq!(
        outcome["result"], "posted",
        "the same delivery, retried: {outcome}"
    );
    let (answer, _) = beat(&seek, "b4").await;
    assert!(answer["age_seconds"].as_i64().unwrap() <= 2, "{answer}");
}

// ---------------------------------------------------------------------------------------------
// The alarm, as CloudWatch evaluates it

/// The parts of an alarm that decide its state, read from template.yaml.
#[derive(Debug, Clone)]
struct Alarm {
    period: i64,
    /// `Maximum` or `Sum`.
    stat: String,
    /// The metric math expression's divisor (`age / 3600`), 1 without one.
    divisor: f64,
    threshold: f64,
    /// `GreaterThanThreshold` or `LessThanThreshold`.
    operator: String,
    evaluation_periods: i64,
    datapoints_to_alarm: usize,
    missing_breaches: bool,
}

fn number(v: &serde_yaml::Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v:?}"))
}

impl Alarm {
    fn from_template() -> Self {
        let doc = template();
        let p = &doc["Resources"]["SeekHeartbeatAlarm"]["Properties"];
        let stat = &p["Metrics"][0]["MetricStat"];
        let expression = p["Metrics"][1]["Expression"]
            .as_str()
            .expect("an expression");
        let divisor = expression
            .split_once('/')
            .map(|(_, d)| d.trim().parse().expect("age / N"))
            .unwrap();
        let threshold = match &p["Threshold"] {
            serde_yaml::Value::Tagged(t) => {
                let name = t.value.as_str().unwrap();
                number(&doc["Parameters"][name]["Default"])
            }
            other => number(other),
        };
        Alarm {
            period: number(&stat["Period"]) as i64,
            stat: stat["Stat"].as_str().unwrap().to_owned(),
            divisor,
            threshold,
            operator: p["ComparisonOperator"].as_str().unwrap().to_owned(),
            evaluation_periods: number(&p["EvaluationPeriods"]) as i64,
            datapoints_to_alarm: number(&p["DatapointsToAlarm"]) as usize,
            missing_breaches: p["TreatMissingData"].as_str() == Some("breaching"),
        }
    }

    /// The alarm this design replaced: a weekly `SeekSucceeded` = 1, Sum per day, 7 of 7 days
    /// below 1, missing breaching.
    fn weekly_success_metric() -> Self {
        Alarm {
            period: DAY,
            stat: "Sum".into(),
            divisor: 1.0,
            threshold: 1.0,
            operator: "LessThanThreshold".into(),
            evaluation_periods: 7,
            datapoints_to_alarm: 7,
            missing_breaches: true,
        }
    }

    fn breaching(&self, value: Option<f64>) -> bool {
        match value {
            None => self.missing_breaches,
            Some(v) => {
                let v = v / self.divisor;
                match self.operator.as_str() {
                    "GreaterThanThreshold" => v > self.threshold,
                    "LessThanThreshold" => v < self.threshold,
                    other => panic!("operator {other}"),
                }
            }
        }
    }

    /// The state at `now`: a sliding window of `evaluation_periods` periods ending now (the
    /// default `SlidingWindow`), each period's statistic over the points that have landed.
    fn in_alarm(&self, points: &[Point], now: i64) -> bool {
        assert!(
            self.period * self.evaluation_periods <= WEEK,
            "CloudWatch caps Period x EvaluationPeriods at 7 days"
        );
        let breaching = (0..self.evaluation_periods)
            .filter(|k| {
                let (from, to) = (now - (k + 1) * self.period, now - k * self.period);
                let values = points
                    .iter()
                    .filter(|p| p.at >= from && p.at < to && p.landed <= now)
                    .map(|p| p.value);
                let value = match self.stat.as_str() {
                    "Maximum" => values.reduce(f64::max),
                    "Sum" => values.reduce(|a, b| a + b),
                    other => panic!("stat {other}"),
                };
                self.breaching(value)
            })
            .count();
        breaching >= self.datapoints_to_alarm
    }
}

/// A data point: its timestamp, when CloudWatch has it, and its value.
#[derive(Debug, Clone, Copy)]
struct Point {
    at: i64,
    landed: i64,
    value: f64,
}

/// What can go wrong, from a moment on.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// The weekly schedule is disabled or deleted: no seeks; beats go on.
    NoSeeks,
    /// Seek fails every time (Slack gone, a permission): beats go on, nothing succeeds.
    SeeksFail,
    /// The secret is deleted: every invocation fails at cold start, beats included.
    Nothing,
}

/// A deterministic jitter in `0..span` for the n-th event.
fn jitter(n: i64, span: i64) -> i64 {
    (n.wrapping_mul(2_654_435_761)).rem_euclid(span)
}

/// Six weeks of a stack: weekly seeks on Tuesdays 00:00 (starting up to 2 min late, taking up
/// to 5 min), beats at the template's rate, metrics landing 1 to 4 min after their timestamp.
/// `fault` starts at `fault_at`. Returns (heartbeat-design points, weekly-success points).
fn timeline(beat_every: i64, fault: Fault, fault_at: i64) -> (Vec<Point>, Vec<Point>) {
    let end = 6 * WEEK;
    let mut events: Vec<(i64, bool)> = Vec::new(); // (time, is_seek)
    for w in 0..6 {
        events.push((w * WEEK + jitter(w, 120), true));
    }
    let mut t = 0;
    while t < end {
        events.push((t + HOUR + jitter(t, 60), false));
        t += beat_every;
    }
    events.sort_by_key(|e| e.0);
    let (mut beats, mut successes) = (Vec::new(), Vec::new());
    let mut last_success: Option<i64> = None;
    for (n, (at, is_seek)) in events.into_iter().enumerate() {
        let faulty = at >= fault_at;
        let landed = at + 60 + jitter(n as i64, 180);
        if is_seek {
            let runs = !(faulty && matches!(fault, Fault::NoSeeks | Fault::Nothing));
            let succeeds = runs && !(faulty && fault == Fault::SeeksFail);
            if succeeds {
                // seek stamps its metrics and its success with its start; they land once it ends
                let done = at + jitter(n as i64 + 7, 300);
                last_success = Some(at);
                let landed = done + 60 + jitter(n as i64, 180);
                beats.push(Point {
                    at,
                    landed,
                    value: 0.0,
                });
                successes.push(Point {
                    at,
                    landed,
                    value: 1.0,
                });
            }
        } else if !(faulty && fault == Fault::Nothing) {
            let since = last_success.unwrap_or(0);
            beats.push(Point {
                at,
                landed,
                value: (at - since) as f64,
            });
        }
    }
    (beats, successes)
}

/// The first moment (checked every 5 minutes, from day 2) the alarm is in ALARM.
fn first_alarm(alarm: &Alarm, points: &[Point]) -> Option<i64> {
    (2 * DAY..6 * WEEK)
        .step_by(300)
        .find(|&now| alarm.in_alarm(points, now))
}

fn beat_every() -> i64 {
    let doc = template();
    let rate = doc["Resources"]["SeekFunction"]["Properties"]["Events"]["Heartbeat"]["Properties"]
        ["ScheduleExpression"]
        .as_str()
        .unwrap();
    // EventBridge Scheduler writes one hour as `rate(1 hour)`, more as `rate(N hours)`.
    let hours: i64 = rate
        .strip_prefix("rate(")
        .and_then(|r| {
            r.strip_suffix(" hours)")
                .or_else(|| r.strip_suffix(" hour)"))
        })
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("rate(N hours) expected, got {rate}"));
    hours * HOUR
}

#[test]
fn the_heartbeat_alarm_is_quiet_while_seeks_run_on_time() {
    let alarm = Alarm::from_template();
    let (beats, successes) = timeline(beat_every(), Fault::None, i64::MAX);
    assert_eq!(first_alarm(&alarm, &beats), None, "{alarm:?}");
    // The design it replaced was not: a weekly success point leaves its 7-day window just as
    // the next on-time run is due, and alarms whenever that run lands later than the last.
    assert!(first_alarm(&Alarm::weekly_success_metric(), &successes).is_some());
}

#[test]
fn the_heartbeat_alarm_reaches_a_person_within_a_day_of_a_missed_run() {
    let alarm = Alarm::from_template();
    // The fault begins two days after week 3's run; week 4's run (at 4 weeks) is missed.
    let fault_at = 3 * WEEK + 2 * DAY;
    let missed_run = 4 * WEEK;
    for fault in [Fault::NoSeeks, Fault::SeeksFail, Fault::Nothing] {
        let (beats, _) = timeline(beat_every(), fault, fault_at);
        let at = first_alarm(&alarm, &beats).unwrap_or_else(|| panic!("{fault:?}: never alarmed"));
        assert!(
            at > fault_at,
            "{fault:?}: alarmed before the fault, at {at}"
        );
        assert!(
            at <= missed_run + DAY,
            "{fault:?}: alarmed {} h after the missed run",
            (at - missed_run) / HOUR
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The metric line reaches CloudWatch at any LogLevel

/// Lambda's application log-level filter for a runtime without built-in JSON logging: a JSON
/// line's level is its `level` key, INFO when it has none; lines below the function's
/// ApplicationLogLevel are dropped.
fn lambda_keeps(line: &str, application_level: &str) -> bool {
    const ORDER: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
    let rank = |l: &str| ORDER.iter().position(|o| o.eq_ignore_ascii_case(l));
    let level = serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["level"].as_str().and_then(rank))
        .unwrap_or(2);
    level >= rank(application_level).expect("a known level")
}

#[tokio::test]
async fn at_log_level_warn_the_metric_lines_still_reach_cloudwatch() {
    // GIVEN the seek function configured as the template configures it, with LogLevel WARN
    let doc = template();
    let globals = &doc["Globals"]["Function"]["Environment"]["Variables"];
    let rust_log = match &globals["RUST_LOG"] {
        serde_yaml::Value::Tagged(t) => t.value.as_str().unwrap().to_owned(),
        other => panic!("RUST_LOG should be !Ref LogLevel, is {other:?}"),
    };
    assert_eq!(rust_log, "LogLevel");
    let logging = &doc["Resources"]["SeekFunction"]["Properties"]["LoggingConfig"];
    assert_eq!(logging["LogFormat"].as_str(), Some("JSON"));
    // `!Ref LogLevel` would make it WARN here
    let application_level = match &logging["ApplicationLogLevel"] {
        serde_yaml::Value::Tagged(t) if t.value.as_str() == Some("LogLevel") => "WARN",
        other => other.as_str().expect("a level or !Ref LogLevel"),
    };
    let w = World::new().await;
    let mut env = w.seek_env("embedding=train/embedding/", 100);
    env.extend([
        ("STACK_NAME".to_owned(), STACK.to_owned()),
        ("RUST_LOG".to_owned(), "WARN".to_owned()),
        // what Lambda sets from LoggingConfig
        (
            "AWS_LAMBDA_LOG_LEVEL".to_owned(),
            application_level.to_owned(),
        ),
    ]);
    let seek = Function::start("seek", env).await;

    // WHEN a heartbeat runs (it logs at INFO and emits its metric)
    let (_, emitted) = beat(&seek, "b1").await;

    // THEN the function wrote no INFO line, and Lambda's filter keeps the metric line
    assert_eq!(emitted.len(), 1);
    let lines = seek.logs.lock().unwrap().clone();
    assert!(
        !lines.iter().any(|l| l.contains(r#""level":"INFO""#)),
        "RUST_LOG=WARN: {lines:#?}"
    );
    // (the age, and the sweep's Expired and Reminded)
    let metric_lines: Vec<&String> = lines.iter().filter(|l| l.contains("\"_aws\"")).collect();
    assert_eq!(metric_lines.len(), 2, "{metric_lines:#?}");
    for line in &metric_lines {
        assert!(
            lambda_keeps(line, application_level),
            "ApplicationLogLevel {application_level} drops the EMF line {line}"
        );
        // (what the template had before: ApplicationLogLevel = LogLevel would drop it)
        assert!(!lambda_keeps(line, "WARN"));
    }
}
