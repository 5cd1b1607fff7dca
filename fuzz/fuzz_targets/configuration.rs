//! Configuration from the environment: `DATASETS` (prefixes, buckets, thresholds in every unit),
//! durations, and `KFP_PARAMETERS` placeholders are either a typed value or an error naming the
//! variable; never a panic. What parses holds up: dataset names are unique, thresholds are
//! finite, and a parameter template accepted against the datasets fills for their snapshot.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use ct_shared::config::{Env, SecretBundle, SeekConfig, duration_secs, parse_datasets};
use ct_shared::domain::{Count, Threshold};
use ct_shared::kfp::{LaunchContext, ParamTemplate};

#[derive(Debug, Arbitrary)]
struct Input {
    datasets: String,
    threshold: String,
    ttl: String,
    remind: String,
    parameters: String,
    placeholder: (u8, String),
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(i) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    if let Ok(t) = Threshold::parse(&i.threshold) {
        if let Threshold::Percent(p) = t {
            assert!(p.is_finite() && p >= 0.0);
        }
    }
    let _ = duration_secs(&i.ttl);
    let names: Vec<String> = match parse_datasets(&i.datasets) {
        Ok(ds) => {
            let mut names: Vec<String> = ds.iter().map(|d| d.name.clone()).collect();
            names.sort();
            let n = names.len();
            names.dedup();
            assert_eq!(n, names.len(), "duplicate names accepted");
            ds.iter().map(|d| d.name.clone()).collect()
        }
        Err(_) => vec!["embedding".into()],
    };
    let env = Env::from_pairs([
        ("DATA_BUCKET", "bucket"),
        ("DATASETS", i.datasets.as_str()),
        ("DATA_INTERVAL", "100"),
        ("STATE_TABLE", "t"),
        ("SLACK_WEBHOOK_URL", "https://hooks.example/x"),
        ("REQUEST_TTL", i.ttl.as_str()),
        ("REMIND_AFTER", i.remind.as_str()),
    ]);
    if let Err(e) = SeekConfig::from_env(&env, &SecretBundle::default()) {
        assert!(
            ["DATASETS", "DATA_BUCKET", "REQUEST_TTL", "REMIND_AFTER"].contains(&e.variable),
            "{e}"
        );
        assert!(e.to_string().contains(e.variable));
    }
    // Parameters: the fuzzer's text, and a template around one placeholder of its choice.
    let kinds = [
        "request_id",
        "approved_by",
        "snapshot_time",
        "seeked.",
        "objects.",
        "bytes.",
        "new.",
        "new_bytes.",
        "removed.",
    ];
    let kind = kinds[usize::from(i.placeholder.0) % kinds.len()];
    let templated = format!(
        "{{\"a\": \"x${{{kind}{}}}y\", \"b\": \"${{{kind}{}}}\"}}",
        if kind.ends_with('.') {
            &i.placeholder.1
        } else {
            ""
        },
        if kind.ends_with('.') {
            names[0].as_str()
        } else {
            ""
        },
    );
    for text in [i.parameters.as_str(), templated.as_str()] {
        if let Ok(t) = ParamTemplate::parse(text, Some(&names)) {
            let snapshot: Vec<Count> = names
                .iter()
                .map(|n| Count {
                    name: n.clone(),
                    counted_at: Some(ct_shared::Timestamp::from_secs(1_795_478_400)),
                    ..Count::default()
                })
                .collect();
            let filled = t.fill(&LaunchContext {
                request_id: "r",
                approved_by: "ann",
                snapshot: &snapshot,
            });
            assert!(filled.is_ok(), "{text}: {filled:?}");
        }
    }
});
