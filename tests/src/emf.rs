//! Reads Embedded Metric Format lines the way CloudWatch would, and says what is wrong with one.

use serde_json::Value;

/// One metric value read from an EMF line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub unit: String,
    pub value: f64,
    /// The line's dimension values, `Stack` first, in the order the directive names them.
    pub dimensions: Vec<(String, String)>,
}

/// Checks one log line as EMF: `_aws.Timestamp` and `_aws.CloudWatchMetrics`, a namespace,
/// dimension sets whose every name is a top-level string, at most 100 metrics, each with a
/// numeric value at the top level. Returns the samples.
pub fn parse(line: &str) -> Result<Vec<Sample>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let aws = v.get("_aws").ok_or("no _aws")?;
    aws.get("Timestamp")
        .and_then(Value::as_i64)
        .filter(|t| *t > 0)
        .ok_or("_aws.Timestamp missing or not epoch milliseconds")?;
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("_aws.CloudWatchMetrics missing or empty")?;
    let mut out = Vec::new();
    for d in directives {
        let ns = d.get("Namespace").and_then(Value::as_str).unwrap_or("");
        if ns.is_empty() || ns.len() > 255 {
            return Err(format!("bad Namespace {ns:?}"));
        }
        let sets = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("Dimensions missing")?;
        let mut dimensions = Vec::new();
        for set in sets {
            let names = set.as_array().ok_or("a dimension set is not an array")?;
            if names.is_empty() || names.len() > 30 {
                return Err(format!("dimension set of {} names", names.len()));
            }
            for n in names {
                let n = n.as_str().ok_or("a dimension name is not a string")?;
                let value = v
                    .get(n)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or(format!("dimension {n} has no string value"))?;
                if !dimensions.iter().any(|(k, _): &(String, String)| k == n) {
                    dimensions.push((n.to_owned(), value.to_owned()));
                }
            }
        }
        let metrics = d
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("Metrics missing")?;
        if metrics.len() > 100 {
            return Err(format!("{} metrics on one line", metrics.len()));
        }
        for m in metrics {
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("a metric has no Name")?;
            let unit = m.get("Unit").and_then(Value::as_str).unwrap_or("None");
            let value = v
                .get(name)
                .and_then(Value::as_f64)
                .ok_or(format!("metric {name} has no numeric value"))?;
            if dimensions.iter().any(|(k, _)| k == name) {
                return Err(format!("{name} is both a dimension and a metric"));
            }
            out.push(Sample {
                name: name.to_owned(),
                unit: unit.to_owned(),
                value,
                dimensions: dimensions.clone(),
            });
        }
    }
    Ok(out)
}

/// Every EMF line among `lines` (those with an `_aws` key), checked; panics naming the bad line.
pub fn samples(lines: &[String]) -> Vec<Sample> {
    lines
        .iter()
        .filter(|l| l.contains("\"_aws\""))
        .flat_map(|l| parse(l).unwrap_or_else(|e| panic!("invalid EMF ({e}): {l}")))
        .collect()
}

/// The sum of a metric's values whose dimensions include all of `with`.
pub fn total(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let hits: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.dimensions.iter().any(|(dk, dv)| dk == k && dv == v))
        })
        .map(|s| s.value)
        .collect();
    (!hits.is_empty()).then(|| hits.iter().sum())
}

/// Writes a run's samples to `target/metrics/<name>.json` (for plotting the README's picture).
pub fn record(name: &str, samples: &[Sample]) {
    let rows: Vec<Value> = samples
        .iter()
        .map(|s| serde_json::json!({"name": s.name, "unit": s.unit, "value": s.value, "dimensions": s.dimensions}))
        .collect();
    write(name, &Value::from(rows));
}

/// Writes a run of several weeks to `target/metrics/<name>.json`: one row per sample, with the
/// week's index and its window's time (epoch seconds), so the samples plot over time.
pub fn record_weeks(name: &str, weeks: &[(usize, i64, Vec<Sample>)]) {
    let rows: Vec<Value> = weeks
        .iter()
        .flat_map(|(week, time, samples)| {
            samples.iter().map(move |s| {
                serde_json::json!({"week": week, "time": time, "name": s.name, "unit": s.unit,
                    "value": s.value, "dimensions": s.dimensions})
            })
        })
        .collect();
    write(name, &Value::from(rows));
}

fn write(name: &str, value: &Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/metrics");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(format!("{name}.json")), value.to_string()));
    if let Err(e) = written {
        eprintln!("could not record the metrics of {name}: {e}");
    }
}

/// A metric a dashboard widget or alarm names: namespace, metric name, dimension names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub widget: String,
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<String>,
}

/// The `!Sub` string of a resource property in `template.yaml`, with every `${...}` replaced
/// by `x`.
fn sub_text(props: &serde_yaml::Value, key: &str) -> String {
    let v = &props[key];
    let text = match v {
        serde_yaml::Value::Tagged(t) => match &t.value {
            serde_yaml::Value::Sequence(s) => s.first().and_then(|f| f.as_str()),
            other => other.as_str(),
        },
        other => other.as_str(),
    }
    .unwrap_or_else(|| panic!("{key} is neither a string nor a !Sub"))
    .to_owned();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closed ${") + i;
        out.push('x');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Reads `SEARCH('{ns,dim,dim} MetricName="X" ...')` into a [`Named`].
fn from_search(widget: &str, expr: &str) -> Named {
    let open = expr.find('{').expect("SEARCH schema {");
    let close = expr[open..].find('}').expect("SEARCH schema }") + open;
    let mut schema = expr[open + 1..close].split(',').map(str::trim);
    let namespace = schema.next().unwrap_or_default().to_owned();
    let dimensions = schema.map(str::to_owned).collect();
    let at = expr
        .find("MetricName=\"")
        .expect("SEARCH names a MetricName")
        + 12;
    let name = expr[at..].split('"').next().unwrap_or_default().to_owned();
    Named {
        widget: widget.to_owned(),
        namespace,
        name,
        dimensions,
    }
}

/// Every widget of the template's dashboard, parsed: (title, the metrics it names).
pub fn dashboard() -> Vec<(String, Vec<Named>)> {
    let text = std::fs::read_to_string(crate::repo_root().join("template.yaml")).expect("template");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("template.yaml is YAML");
    let props = &doc["Resources"]["Dashboard"]["Properties"];
    let body: Value = serde_json::from_str(&sub_text(props, "DashboardBody"))
        .unwrap_or_else(|e| panic!("DashboardBody is not JSON: {e}"));
    let widgets = body["widgets"].as_array().expect("widgets");
    widgets
        .iter()
        .map(|w| {
            let title = w["properties"]["title"].as_str().unwrap_or("").to_owned();
            let named = w["properties"]["metrics"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|row| {
                    let row = row.as_array()?;
                    if let Some(expr) = row.first()?.get("expression").and_then(Value::as_str) {
                        return Some(from_search(&title, expr));
                    }
                    let strings: Vec<&str> = row.iter().filter_map(Value::as_str).collect();
                    let (ns, name) = (strings.first()?, strings.get(1)?);
                    Some(Named {
                        widget: title.clone(),
                        namespace: (*ns).to_owned(),
                        name: (*name).to_owned(),
                        dimensions: strings[2..]
                            .iter()
                            .step_by(2)
                            .map(|d| (*d).to_owned())
                            .collect(),
                    })
                })
                .collect();
            (title, named)
        })
        .collect()
}
