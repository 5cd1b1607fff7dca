use super::*;

/// A snapshot entry as versions before change detection stored it.
fn legacy(seeked: u64, trained: u64, threshold: u64) -> Count {
    serde_json::from_value(serde_json::json!({
        "name": "d", "prefix": "p/", "seeked": seeked, "trained": trained, "threshold": threshold
    }))
    .unwrap()
}

const AT: Timestamp = Timestamp::from_secs(1_795_478_400);

fn seen(objects: u64, bytes: u64, new_objects: u64, new_bytes: u64, fp: u64) -> Sums {
    Sums {
        objects,
        bytes,
        new_objects,
        new_bytes,
        fingerprint: Fingerprint(fp),
    }
}

fn baseline(objects: u64, bytes: u64, fp: u64) -> Baseline {
    Baseline {
        objects,
        bytes: Some(bytes),
        fingerprint: Some(Fingerprint(fp)),
        snapshot_at: Some(AT.plus_secs(-7 * 86_400)),
    }
}

fn judged(threshold: Threshold) -> Judged<'static> {
    Judged {
        name: "d",
        prefix: "p/",
        threshold,
    }
}

#[test]
fn the_old_rule_holds_for_old_snapshots_and_append_only_data() {
    assert!(!legacy(100, 0, 100).worth_training());
    assert!(legacy(101, 0, 100).worth_training());
    assert!(!legacy(1100, 1000, 100).worth_training());
    assert!(legacy(1101, 1000, 100).worth_training());
    assert!(
        !legacy(5, 10, 0).worth_training(),
        "deletions alone never ask"
    );
    assert_eq!(legacy(5, 10, 0).new_objects(), 0);
    assert_eq!(legacy(5, 10, 0).removed(), 5);
    assert!(!legacy(u64::MAX, u64::MAX - 1, u64::MAX).worth_training());
    // Append-only data measured by dates: exactly the same verdicts.
    for (objects, trained, want) in [(1100, 1000, false), (1101, 1000, true)] {
        let new = objects - trained;
        let c = measure(
            judged(Threshold::Objects(100)),
            &seen(objects, 0, new, 0, 7),
            AT,
            &baseline(trained, 0, 8),
        );
        assert_eq!(c.worth_training(), want, "{objects} against {trained}");
        assert_eq!(c.removed(), 0);
    }
}

#[test]
fn any_dataset_over_its_threshold_asks() {
    assert_eq!(
        verdict(&[legacy(10, 0, 100), legacy(200, 0, 100)]),
        Verdict::Ask
    );
    assert_eq!(
        verdict(&[legacy(10, 0, 100), legacy(100, 0, 100)]),
        Verdict::NoNeed
    );
    assert_eq!(verdict(&[]), Verdict::NoNeed);
}

#[test]
fn a_rolling_dataset_is_new_and_removed_at_a_flat_count() {
    // 500 trained; 300 pruned and 300 landed since: still 500.
    let c = measure(
        judged(Threshold::Objects(100)),
        &seen(500, 2_000, 300, 1_200, 1),
        AT,
        &baseline(500, 2_000, 2),
    );
    assert_eq!((c.seeked, c.trained), (500, 500));
    assert_eq!(
        (c.new_objects(), c.removed(), c.new_bytes),
        (300, 300, 1_200)
    );
    assert!(c.changed() && !c.old_dated_change());
    assert!(c.worth_training());
    assert_eq!(c.counted_at, Some(AT));
}

#[test]
fn a_rewrite_in_place_is_all_new_and_all_removed() {
    let c = measure(
        judged(Threshold::Percent(50.0)),
        &seen(400, 4_000, 400, 4_000, 1),
        AT,
        &baseline(400, 4_000, 2),
    );
    assert_eq!((c.new_objects(), c.removed()), (400, 400));
    assert!(c.worth_training(), "200% moved");
}

#[test]
fn old_dated_copies_change_the_fingerprint_only() {
    let c = measure(
        judged(Threshold::Objects(0)),
        &seen(500, 2_000, 0, 0, 1),
        AT,
        &baseline(500, 2_000, 2),
    );
    assert!(c.changed() && c.old_dated_change());
    assert!(!c.worth_training(), "by itself it crosses no threshold");
    // Equal fingerprints: nothing changed, whatever the dates said.
    let same = measure(
        judged(Threshold::Objects(0)),
        &seen(500, 2_000, 3, 30, 2),
        AT,
        &baseline(500, 2_000, 2),
    );
    assert_eq!(
        (same.new_objects(), same.new_bytes, same.removed()),
        (0, 0, 0)
    );
    assert!(!same.changed() && !same.worth_training());
}

#[test]
fn percent_thresholds_ask_on_exactly_the_right_side() {
    let judge = |new: u64, removed: u64, trained: u64| {
        let objects = trained - removed + new;
        measure(
            judged(Threshold::Percent(2.5)),
            &seen(objects, 0, new, 0, 1),
            AT,
            &baseline(trained, 0, 2),
        )
    };
    // 2.5% of 1,000 is 25: 25 moved is not over it, 26 is.
    assert!(!judge(20, 5, 1_000).worth_training());
    assert!(judge(20, 6, 1_000).worth_training());
    assert!(judge(26, 0, 1_000).worth_training());
    // Nothing trained yet: any new object crosses it.
    let first = measure(
        judged(Threshold::Percent(90.0)),
        &seen(1, 0, 1, 0, 1),
        AT,
        &Baseline::default(),
    );
    assert!(first.worth_training());
    let empty = measure(
        judged(Threshold::Percent(90.0)),
        &seen(0, 0, 0, 0, 0),
        AT,
        &Baseline::default(),
    );
    assert!(!empty.worth_training());
}

#[test]
fn bytes_thresholds_ask_on_exactly_the_right_side() {
    let judge = |new_bytes| {
        measure(
            judged(Threshold::Bytes(1_000_000)),
            &seen(10, new_bytes + 5, 3, new_bytes, 1),
            AT,
            &baseline(7, 5, 2),
        )
        .worth_training()
    };
    assert!(!judge(1_000_000));
    assert!(judge(1_000_001));
}

#[test]
fn a_baseline_from_before_change_detection_is_compared_by_count() {
    let old = Baseline {
        objects: 640,
        ..Baseline::default()
    };
    assert!(old.by_count() && old.since().is_none());
    // Dates cannot tell (every object looks new to a count without `since`).
    let c = measure(
        judged(Threshold::Bytes(1_000)),
        &seen(700, 70_000, 700, 70_000, 1),
        AT,
        &old,
    );
    assert!(c.by_count());
    assert_eq!((c.new_objects(), c.removed()), (60, 0));
    assert_eq!(c.new_bytes, 6_000, "estimated at the average size");
    assert!(c.worth_training());
    assert!(!c.changed(), "no fingerprint to compare with");
    // Nothing trained yet is not "by count": everything is new.
    let fresh = measure(
        judged(Threshold::Objects(100)),
        &seen(150, 1, 150, 1, 1),
        AT,
        &Baseline::default(),
    );
    assert!(!fresh.by_count());
    assert_eq!(fresh.new_objects(), 150);
    // The count becomes a baseline with a time.
    assert_eq!(fresh.as_baseline().snapshot_at, Some(AT));
    assert_eq!(fresh.as_baseline().bytes, Some(1));
}

#[test]
fn thresholds_parse_in_their_units() {
    for (text, want) in [
        ("500", Threshold::Objects(500)),
        ("0", Threshold::Objects(0)),
        ("2.5%", Threshold::Percent(2.5)),
        ("10%", Threshold::Percent(10.0)),
        ("1MB", Threshold::Bytes(1_000_000)),
        ("1.5GiB", Threshold::Bytes(1_610_612_736)),
        ("2 kB", Threshold::Bytes(2_000)),
        ("3B", Threshold::Bytes(3)),
        ("1TiB", Threshold::Bytes(1 << 40)),
        ("0.001KB", Threshold::Bytes(1)),
    ] {
        assert_eq!(Threshold::parse(text), Ok(want), "{text}");
    }
    for bad in [
        "10%%",
        "5XB",
        "-3",
        "1.5",
        "%",
        "1.%",
        ".5%",
        "1e3",
        "MB",
        "1.2.3MB",
        "99999999TB",
        "2 kb",
        "1b",
        "1mb",
        "1 GIB",
        "99999999999999999999999",
    ] {
        assert!(Threshold::parse(bad).is_err(), "{bad:?} should be refused");
    }
    assert!(
        Threshold::parse("1.5")
            .unwrap_err()
            .contains("number of objects is whole")
    );
}

#[test]
fn thresholds_read_back_from_json_old_and_new() {
    for t in [
        Threshold::Objects(100),
        Threshold::Percent(2.5),
        Threshold::Bytes(1_000_000),
    ] {
        let json = serde_json::to_value(t).unwrap();
        assert_eq!(serde_json::from_value::<Threshold>(json).unwrap(), t);
    }
    assert_eq!(
        serde_json::to_value(Threshold::Objects(100)).unwrap(),
        serde_json::json!(100)
    );
    assert_eq!(legacy(1, 0, 7).threshold, Threshold::Objects(7));
}

#[test]
fn bytes_read_as_people_read_them() {
    for (n, text) in [
        (0, "0 B"),
        (999, "999 B"),
        (1_000, "1.0 KB"),
        (1_234_567, "1.2 MB"),
        (99_949_999, "99.9 MB"),
        (999_449_999, "999 MB"),
        (999_500_000, "1.0 GB"),
        (2_000_000_000, "2.0 GB"),
        (123_400_000_000, "123 GB"),
        (u64::MAX, "18447 PB"),
    ] {
        assert_eq!(bytes_text(n), text, "{n}");
    }
    assert_eq!(Threshold::Bytes(1_500_000).text(), "1.5 MB");
    assert_eq!(Threshold::Percent(2.5).text(), "2.5%");
    assert_eq!(Threshold::Objects(1).text(), "1 object");
}

#[test]
fn the_snapshot_time_is_the_earliest_count_start() {
    let mut a = legacy(1, 0, 1);
    assert_eq!(snapshot_time(std::slice::from_ref(&a)), None);
    a.counted_at = Some(AT.plus_secs(3));
    let mut b = legacy(1, 0, 1);
    b.counted_at = Some(AT);
    assert_eq!(snapshot_time(&[a, b]), Some(AT));
}
