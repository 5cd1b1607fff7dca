//! A moto server on loopback, started once per process on a free port.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

const HOW_TO: &str = "start one with `python3 -m venv .venv && .venv/bin/pip install 'moto[server]' && \
     .venv/bin/python tests/moto_serve.py 5000 --foreground` and set MOTO_URL=http://127.0.0.1:5000, \
     or run the README's test command (scripts/test), which installs moto into .venv";

struct Server {
    url: String,
    _child: Option<Child>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn python() -> PathBuf {
    crate::repo_root().join(".venv/bin/python")
}

fn start() -> Server {
    if let Ok(url) = std::env::var("MOTO_URL") {
        return Server { url, _child: None };
    }
    let py = python();
    if !py.exists() {
        panic!(
            "moto is not installed ({} is missing): {HOW_TO}",
            py.display()
        );
    }
    let mut child = Command::new(&py)
        .arg(crate::repo_root().join("tests/moto_serve.py"))
        .arg("0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start the moto server ({e}): {HOW_TO}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("moto server said nothing ({e}): {HOW_TO}"));
    let port: u16 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("moto server did not start (printed {line:?}): {HOW_TO}"));
    // stdin stays open while this process lives; the server exits when it closes.
    std::mem::forget(child.stdin.take());
    Server {
        url: format!("http://127.0.0.1:{port}"),
        _child: Some(child),
    }
}

/// The moto server's URL, starting it on first use. Panics, saying how to start one, when
/// moto cannot be found.
pub fn url() -> &'static str {
    &SERVER.get_or_init(start).url
}

/// SDK configuration pointing at moto, with fixed test credentials and no profile files.
pub async fn sdk() -> aws_config::SdkConfig {
    let url = url();
    // Fail fast, with the how-to, if the server died.
    if std::net::TcpStream::connect(url.trim_start_matches("http://")).is_err() {
        panic!("moto server at {url} is not answering: {HOW_TO}");
    }
    sdk_at(url).await
}

/// SDK configuration for an endpoint in front of moto (the fault-injecting proxy).
pub async fn sdk_at(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "ct-trigger-tests",
        ))
        .load()
        .await
}

/// The state table's key schema, read from `template.yaml` (the one shared definition).
pub fn template_key_schema() -> (Vec<KeySchemaElement>, Vec<AttributeDefinition>) {
    let path = crate::repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).expect("template.yaml is readable");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("template.yaml is YAML");
    let props = &doc["Resources"]["StateTable"]["Properties"];
    let keys = props["KeySchema"]
        .as_sequence()
        .expect("StateTable.KeySchema")
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().expect("AttributeName"))
                .key_type(KeyType::from(k["KeyType"].as_str().expect("KeyType")))
                .build()
                .expect("key schema element")
        })
        .collect();
    let attrs = props["AttributeDefinitions"]
        .as_sequence()
        .expect("StateTable.AttributeDefinitions")
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().expect("AttributeName"))
                .attribute_type(ScalarAttributeType::from(
                    a["AttributeType"].as_str().expect("AttributeType"),
                ))
                .build()
                .expect("attribute definition")
        })
        .collect();
    (keys, attrs)
}

/// Creates a state table shaped exactly as `template.yaml` declares it.
pub async fn create_table(sdk: &aws_config::SdkConfig, name: &str) {
    let (keys, attrs) = template_key_schema();
    aws_sdk_dynamodb::Client::new(sdk)
        .create_table()
        .table_name(name)
        .set_key_schema(Some(keys))
        .set_attribute_definitions(Some(attrs))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
}

fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

pub async fn create_bucket(sdk: &aws_config::SdkConfig, name: &str) {
    s3(sdk)
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("create bucket");
}

/// Puts `n` small objects under `prefix` (`{prefix}{start + i:06}.jsonl`).
pub async fn put_objects(
    sdk: &aws_config::SdkConfig,
    bucket: &str,
    prefix: &str,
    start: usize,
    n: usize,
) {
    let client = s3(sdk);
    for i in start..start + n {
        client
            .put_object()
            .bucket(bucket)
            .key(format!("{prefix}{i:06}.jsonl"))
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}\n"))
            .send()
            .await
            .expect("put object");
    }
}

/// Puts empty objects under `keys` in one request, straight into moto's S3 backend
/// (tests/moto_serve.py's `/_ct/seed`): for tests that list thousands of keys.
pub async fn seed_keys(bucket: &str, keys: &[String]) {
    seed(serde_json::json!({ "bucket": bucket, "keys": keys })).await;
}

/// One object to seed: its key, size and when it is listed as last modified.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub key: String,
    pub size: u64,
    /// Epoch seconds; `None`: now, as a PUT would.
    pub last_modified: Option<i64>,
    /// What its bytes repeat: another fill is another ETag (a rewrite).
    pub fill: String,
}

impl Seeded {
    pub fn new(key: impl Into<String>, size: u64, last_modified: Option<i64>) -> Self {
        Self {
            key: key.into(),
            size,
            last_modified,
            fill: "x".into(),
        }
    }
}

/// Deletes `delete`, then puts `objects` with their sizes, contents and dates, in one request
/// straight into moto's S3 backend (see [`seed_keys`]).
pub async fn seed_objects(bucket: &str, objects: &[Seeded], delete: &[String]) {
    let objects: Vec<serde_json::Value> = objects
        .iter()
        .map(|o| {
            let mut v = serde_json::json!({"key": o.key, "size": o.size, "fill": o.fill});
            if let Some(t) = o.last_modified {
                v["last_modified"] = t.into();
            }
            v
        })
        .collect();
    seed(serde_json::json!({ "bucket": bucket, "keys": objects, "delete": delete })).await;
}

async fn seed(body: serde_json::Value) {
    ct_shared::tls::install_provider();
    let res = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("seed http client")
        .post(format!("{}/_ct/seed", url()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("seed moto");
    assert!(
        res.status().is_success(),
        "seeding moto: {} (the server must be tests/moto_serve.py: {HOW_TO})",
        res.status()
    );
}

/// Puts one object with the given key (a folder marker when it ends in `/`).
pub async fn put_key(sdk: &aws_config::SdkConfig, bucket: &str, key: &str) {
    s3(sdk)
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b""))
        .send()
        .await
        .expect("put key");
}

/// Creates a Secrets Manager secret and returns its ARN.
pub async fn create_secret(sdk: &aws_config::SdkConfig, name: &str, json: &str) -> String {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(json)
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("secret arn")
}

/// Reads a whole item of the state table by key, for assertions.
pub async fn item(
    sdk: &aws_config::SdkConfig,
    table: &str,
    pk: &str,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key(
            ct_shared::aws::dynamo::KEY,
            aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
}

/// Every item of the state table, for assertions about what was (not) written.
pub async fn scan(
    sdk: &aws_config::SdkConfig,
    table: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    aws_sdk_dynamodb::Client::new(sdk)
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default()
}
