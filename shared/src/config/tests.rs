use super::*;

#[test]
fn parses_datasets_with_and_without_thresholds() {
    let d = parse_datasets("embedding=train/embedding/, faiss=train/faiss/:500").unwrap();
    assert_eq!(
        d,
        vec![
            Dataset {
                name: "embedding".into(),
                bucket: None,
                prefix: "train/embedding/".into(),
                threshold: None
            },
            Dataset {
                name: "faiss".into(),
                bucket: None,
                prefix: "train/faiss/".into(),
                threshold: Some(Threshold::Objects(500))
            },
        ]
    );
}

#[test]
fn thresholds_in_objects_percent_and_bytes_and_datasets_in_other_buckets() {
    let d = parse_datasets(
        "a=train/a/:500,b=train/b/:2.5%,c=train/c/:1.5GiB,d=s3://other-bucket/d/:1MB,\
         e=s3://other-bucket/e/,f=s3://whole.bucket,g=s3://my-bucket:10%,h=s3://b-1/x:y/:",
    )
    .unwrap();
    let got: Vec<_> = d
        .iter()
        .map(|d| (d.bucket.as_deref(), d.prefix.as_str(), d.threshold))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, "train/a/", Some(Threshold::Objects(500))),
            (None, "train/b/", Some(Threshold::Percent(2.5))),
            (None, "train/c/", Some(Threshold::Bytes(1_610_612_736))),
            (
                Some("other-bucket"),
                "d/",
                Some(Threshold::Bytes(1_000_000))
            ),
            (Some("other-bucket"), "e/", None),
            (Some("whole.bucket"), "", None),
            (Some("my-bucket"), "", Some(Threshold::Percent(10.0))),
            (Some("b-1"), "x:y/", None),
        ]
    );
    assert_eq!(d[3].location(), "s3://other-bucket/d/");
    assert_eq!(d[0].location(), "train/a/");
}

#[test]
fn malformed_thresholds_and_buckets_are_refused_naming_the_entry() {
    for (text, shown) in [
        ("a=x/,b=y/:10%%", "\"10%%\""),
        ("a=x/,b=y/:5XB", "\"5XB\""),
        ("a=x/,b=y/:-3", "\"-3\""),
        ("a=x/,b=y/:1.5", "\"1.5\""),
        ("a=x/,b=s3:///y/", "bucket name after s3:// is empty"),
        ("a=x/,b=s3://", "bucket name after s3:// is empty"),
        ("a=x/,b=s3://Upper/y/", "\"Upper\" is not an S3 bucket name"),
        ("a=x/,b=s3://ab/y/", "\"ab\" is not an S3 bucket name"),
    ] {
        let err = parse_datasets(text).unwrap_err();
        assert!(err.contains("entry 2"), "{text}: {err}");
        assert!(err.contains(shown), "{text}: {err}");
    }
    let err = SeekConfig::from_env(
        &seek_env(&[("DATASETS", "a=x/:10%%")]),
        &SecretBundle::default(),
    )
    .unwrap_err();
    assert_eq!(err.variable, "DATASETS");
    assert!(
        err.to_string().contains("DATASETS") && err.to_string().contains("entry 1"),
        "{err}"
    );
}

#[test]
fn data_bucket_is_needed_only_by_datasets_without_a_bucket() {
    let none = SecretBundle::default();
    let mut env = seek_env(&[("DATASETS", "a=s3://bucket-one/a/,b=s3://bucket-two/b/")]);
    env.0.remove("DATA_BUCKET");
    let cfg = SeekConfig::from_env(&env, &none).unwrap();
    assert_eq!(cfg.data_bucket, None);
    assert_eq!(cfg.bucket_of(&cfg.datasets[1]), "bucket-two");
    let mut env = seek_env(&[("DATASETS", "a=s3://bucket-one/a/,b=train/b/")]);
    env.0.remove("DATA_BUCKET");
    let err = SeekConfig::from_env(&env, &none).unwrap_err();
    assert_eq!(err.variable, "DATA_BUCKET");
    assert!(err.to_string().contains("\"b\""), "{err}");
    let cfg = SeekConfig::from_env(
        &seek_env(&[("DATASETS", "a=s3://bucket-one/a/,b=train/b/:7")]),
        &none,
    )
    .unwrap();
    assert_eq!(cfg.bucket_of(&cfg.datasets[0]), "bucket-one");
    assert_eq!(cfg.bucket_of(&cfg.datasets[1]), "bucket");
    assert_eq!(cfg.threshold_of(&cfg.datasets[0]), Threshold::Objects(100));
    assert_eq!(cfg.threshold_of(&cfg.datasets[1]), Threshold::Objects(7));
}

#[test]
fn a_threshold_that_is_not_a_whole_number_is_refused_naming_the_entry() {
    for (text, entry, shown) in [
        (
            "embedding=train/embedding/,faiss=train/faiss/:5OO",
            "entry 2",
            "\"5OO\"",
        ),
        ("x=a:b/c", "entry 1", "\"b/c\""),
        ("x=a:1b", "entry 1", "\"1b\""),
        ("x=a/:-5", "entry 1", "\"-5\""),
        ("x=a/:2.5", "entry 1", "\"2.5\""),
    ] {
        let err = parse_datasets(text).unwrap_err();
        assert!(err.contains(entry), "{text}: {err}");
        assert!(err.contains(shown), "{text}: {err}");
        assert!(err.contains("name=prefix:N"), "{text}: {err}");
    }
}

#[test]
fn a_prefix_with_a_colon_ends_with_one_more_colon() {
    let d = parse_datasets("logs=s3:odd/prefix:,x=a:b/c:7,y=ends-in-colon::,z=plain/:").unwrap();
    let got: Vec<_> = d.iter().map(|d| (d.prefix.as_str(), d.threshold)).collect();
    assert_eq!(
        got,
        vec![
            ("s3:odd/prefix", None),
            ("a:b/c", Some(Threshold::Objects(7))),
            ("ends-in-colon:", None),
            ("plain/", None),
        ]
    );
}

#[test]
fn rejects_malformed_datasets() {
    for bad in [
        "",
        "embedding",
        "=train/",
        "embedding=",
        "embedding=:5",
        "a=x/,,b=y/",
        "a=x/,a=y/",
        "bad name=x/",
        "a=x/:99999999999999999999999",
        "a=x/:5OO",
        "a=:",
    ] {
        assert!(parse_datasets(bad).is_err(), "{bad:?} should be refused");
    }
}

fn seek_env(extra: &[(&str, &str)]) -> Env {
    let mut pairs = vec![
        ("DATA_BUCKET", "bucket"),
        ("DATASETS", "embedding=train/embedding/"),
        ("DATA_INTERVAL", "100"),
        ("STATE_TABLE", "table"),
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/SECRETXYZ",
        ),
    ];
    for (k, v) in extra {
        pairs.retain(|(n, _)| n != k);
        pairs.push((k, v));
    }
    Env::from_pairs(pairs)
}

#[test]
fn seek_config_names_the_bad_variable() {
    let none = SecretBundle::default();
    assert!(SeekConfig::from_env(&seek_env(&[]), &none).is_ok());
    for (var, value) in [
        ("DATA_BUCKET", ""),
        ("DATASETS", "nonsense"),
        ("DATA_INTERVAL", "ten"),
        ("DATA_INTERVAL", "-1"),
        ("LIST_CONCURRENCY", "0"),
        ("LIST_CONCURRENCY", "many"),
        ("STATE_TABLE", " "),
        ("SLACK_WEBHOOK_URL", "not a url SECRETXYZ"),
    ] {
        let err = SeekConfig::from_env(&seek_env(&[(var, value)]), &none).unwrap_err();
        assert_eq!(err.variable, var, "{err}");
        assert!(err.to_string().contains(var));
        assert!(
            !err.to_string().contains("SECRETXYZ"),
            "secret leaked: {err}"
        );
    }
}

#[test]
fn plain_variables_override_the_secret() {
    let bundle = SecretBundle::from_json(
        r#"{"slack_webhook_url":"https://from.secret/hook","slack_signing_secret":"s","send_token":"t"}"#,
    )
    .unwrap();
    let env = seek_env(&[]);
    let cfg = SeekConfig::from_env(&env, &bundle).unwrap();
    assert_eq!(
        cfg.common.slack,
        Route::Webhook(Secret::new(
            "https://hooks.slack.com/services/T/B/SECRETXYZ"
        ))
    );
    let mut env = seek_env(&[]);
    env.0.remove("SLACK_WEBHOOK_URL");
    let cfg = SeekConfig::from_env(&env, &bundle).unwrap();
    assert_eq!(
        cfg.common.slack,
        Route::Webhook(Secret::new("https://from.secret/hook"))
    );
    assert!(!format!("{cfg:?} {bundle:?}").contains("from.secret"));
}

#[test]
fn a_bot_token_posts_through_the_web_api_in_one_channel() {
    let none = SecretBundle::default();
    let mut env = seek_env(&[
        ("SLACK_BOT_TOKEN", "xoxb-BOTSECRET"),
        ("SLACK_CHANNEL", "C0123ABCD"),
    ]);
    env.0.remove("SLACK_WEBHOOK_URL");
    let cfg = SeekConfig::from_env(&env, &none).unwrap();
    let Route::Api { api, channel } = &cfg.common.slack else {
        panic!("{:?}", cfg.common.slack)
    };
    assert_eq!(
        (api.base.as_str(), channel.as_str()),
        (SLACK_API_URL, "C0123ABCD")
    );
    assert_eq!(api.token.expose(), "xoxb-BOTSECRET");
    assert!(!format!("{cfg:?}").contains("BOTSECRET"));
    // From the secret, with a local API.
    let bundle = SecretBundle::from_json(r#"{"slack_bot_token":"xoxb-FROMSECRET"}"#).unwrap();
    let mut env = seek_env(&[
        ("SLACK_CHANNEL", "C0123ABCD"),
        ("SLACK_API_URL", "http://127.0.0.1:9/api"),
    ]);
    env.0.remove("SLACK_WEBHOOK_URL");
    let cfg = SeekConfig::from_env(&env, &bundle).unwrap();
    let Route::Api { api, .. } = &cfg.common.slack else {
        panic!()
    };
    assert_eq!(api.base, "http://127.0.0.1:9/api/");
    for (extra, variable) in [
        (vec![("SLACK_BOT_TOKEN", "xoxb-BOTSECRET")], "SLACK_CHANNEL"),
        (
            vec![
                ("SLACK_BOT_TOKEN", "xoxb-BOTSECRET"),
                ("SLACK_CHANNEL", "#training"),
            ],
            "SLACK_CHANNEL",
        ),
        (vec![("SLACK_CHANNEL", "C0123ABCD")], "SLACK_BOT_TOKEN"),
        (
            vec![
                ("SLACK_BOT_TOKEN", "xoxb-BOTSECRET"),
                ("SLACK_CHANNEL", "C0123ABCD"),
                ("SLACK_API_URL", "slack"),
            ],
            "SLACK_API_URL",
        ),
    ] {
        let mut env = seek_env(&extra);
        env.0.remove("SLACK_WEBHOOK_URL");
        let err = SeekConfig::from_env(&env, &none).unwrap_err();
        assert_eq!(err.variable, variable, "{extra:?}: {err}");
        assert!(!err.to_string().contains("BOTSECRET"), "{err}");
    }
}

#[test]
fn lifetimes_are_durations_with_units_or_never_and_the_reminder_comes_first() {
    for (raw, want) in [
        ("7d", Some(604_800)),
        ("36h", Some(129_600)),
        ("90m", Some(5_400)),
        ("30s", Some(30)),
        ("0", None),
        ("0d", None),
    ] {
        assert_eq!(duration_secs(raw), Ok(want), "{raw}");
    }
    for bad in [
        "7",
        "d",
        "1.5h",
        "-1d",
        "7w",
        "",
        "7 d",
        "400d",
        "99999999999999999999d",
        // found by the `configuration` fuzz target: a last character of more than one byte
        "Ł",
        "7Ł",
        "ŁŁ",
        "",
    ] {
        assert!(duration_secs(bad).is_err(), "{bad:?}");
    }
    // ... and refused at start by name, not a panic
    let err = SeekConfig::from_env(&seek_env(&[("REQUEST_TTL", "Ł")]), &SecretBundle::default())
        .unwrap_err();
    assert_eq!(err.variable, "REQUEST_TTL", "{err}");
    let none = SecretBundle::default();
    let cfg = SeekConfig::from_env(&seek_env(&[]), &none).unwrap();
    assert_eq!(
        (cfg.request_ttl, cfg.remind_after),
        (Some(604_800), Some(86_400))
    );
    let cfg = SeekConfig::from_env(&seek_env(&[("REQUEST_TTL", "0")]), &none).unwrap();
    assert_eq!(cfg.request_ttl, None);
    for (extra, variable) in [
        (vec![("REQUEST_TTL", "weekly")], "REQUEST_TTL"),
        (vec![("REMIND_AFTER", "1x")], "REMIND_AFTER"),
        (
            vec![("REQUEST_TTL", "1h"), ("REMIND_AFTER", "1h")],
            "REMIND_AFTER",
        ),
        (vec![("APPROVERS", "ann")], "APPROVERS"),
    ] {
        let err = SeekConfig::from_env(&seek_env(&extra), &none).unwrap_err();
        assert_eq!(err.variable, variable, "{extra:?}: {err}");
    }
}

#[test]
fn bad_secret_json_does_not_quote_it() {
    let err = SecretBundle::from_json("{\"slack_webhook_url\": 5, \"x\": \"hunter2\"}")
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.variable, "SECRETS_ARN");
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn send_without_token_on_a_public_url_refuses_to_start() {
    let env = Env::from_pairs([
        ("STATE_TABLE", "t"),
        ("SLACK_WEBHOOK_URL", "https://hooks.example/x"),
        ("SEND_URL_AUTH", "NONE"),
    ]);
    let err = SendConfig::from_env(&env, &SecretBundle::default()).unwrap_err();
    assert_eq!(err.variable, "SEND_TOKEN");
    let env = Env::from_pairs([
        ("STATE_TABLE", "t"),
        ("SLACK_WEBHOOK_URL", "https://hooks.example/x"),
        ("SEND_URL_AUTH", "iam"),
    ]);
    let err = SendConfig::from_env(&env, &SecretBundle::default()).unwrap_err();
    assert_eq!(err.variable, "SEND_URL_AUTH");
}

#[test]
fn requests_in_flight_follow_the_memory_size_unless_fixed() {
    use crate::config::ListConcurrency;
    let none = SecretBundle::default();
    let parsed = |pairs: &[(&str, &str)]| {
        SeekConfig::from_env(&seek_env(pairs), &none)
            .map(|c| c.list_concurrency)
            .map_err(|e| e.variable)
    };
    assert_eq!(parsed(&[]), Ok(ListConcurrency::Sized { memory_mb: 1024 }));
    assert_eq!(
        parsed(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")]),
        Ok(ListConcurrency::Sized { memory_mb: 3008 })
    );
    assert_eq!(
        parsed(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008"),
            ("LIST_CONCURRENCY", "48")
        ]),
        Ok(ListConcurrency::Fixed(48))
    );
    for bad in ["64", "10241", "lots", "1.5"] {
        assert_eq!(
            parsed(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", bad)]),
            Err("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "{bad}"
        );
    }
}

#[test]
fn the_runtime_takes_every_vcpu_the_memory_grants() {
    use crate::config::worker_threads;
    assert_eq!(worker_threads(1024, 2), 1);
    assert_eq!(worker_threads(1769, 2), 1);
    assert_eq!(worker_threads(1770, 2), 2);
    assert_eq!(
        worker_threads(10_240, 2),
        2,
        "no more than the machine shows"
    );
    assert_eq!(worker_threads(10_240, 8), 6);
    assert_eq!(worker_threads(128, 0), 1);
}
