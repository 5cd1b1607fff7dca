//! The Kubeflow Pipelines v2beta1 REST API over reqwest: the calls a launch makes, and KFP's
//! answers mapped to [`KfpError`] reasons a person can act on.

use super::{KfpError, NewRun, Pipelines, Run};
use crate::Secret;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use std::time::Duration;

/// One KFP API, built once at cold start.
#[derive(Debug, Clone)]
pub struct KfpClient {
    http: reqwest::Client,
    /// The API base, e.g. `https://kubeflow.example.com/pipeline`, without a trailing `/`.
    base: String,
    namespace: Option<String>,
    experiment_id: Option<String>,
    token: Option<Secret>,
    timeout: Duration,
}

impl KfpClient {
    pub fn new(
        base: &str,
        namespace: Option<String>,
        experiment_id: Option<String>,
        token: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = crate::tls::reqwest_builder()
            .connect_timeout(Duration::from_secs(3))
            // A redirect from an API means a login page in front of it: see it, don't follow it.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ct-trigger/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            namespace,
            experiment_id,
            token,
            timeout,
        })
    }

    fn url(&self, path: &[&str], query: &[(&str, &str)]) -> Result<Url, KfpError> {
        let mut url = Url::parse(&self.base).map_err(|_| KfpError::Unexpected {
            status: 0,
            detail: "KFP_ENDPOINT is not a URL".into(),
        })?;
        url.path_segments_mut()
            .map_err(|_| KfpError::Unexpected {
                status: 0,
                detail: "KFP_ENDPOINT cannot take a path".into(),
            })?
            .pop_if_empty()
            .extend(["apis", "v2beta1"])
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request; `what` names the thing a 404 means is missing.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, KfpError> {
        let mut req = self.http.request(method, url).timeout(self.timeout);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| unavailable(&e, self.timeout))?;
        let status = resp.status();
        if status.is_success() {
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| unavailable(&e, self.timeout))?;
            return serde_json::from_slice(&bytes).map_err(|_| KfpError::Unavailable {
                detail: "the answer was not JSON".into(),
            });
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase);
        let text = resp.text().await.unwrap_or_default();
        Err(classify(status, location.as_deref(), &text, what))
    }
}

/// Maps a non-2xx answer to a reason.
fn classify(status: StatusCode, location: Option<&str>, body: &str, what: &str) -> KfpError {
    let code = status.as_u16();
    let message = kfp_message(body);
    match code {
        401 | 403 => KfpError::AuthNeeded { status: code },
        300..=399
            if location.is_some_and(|l| {
                ["login", "oauth", "auth", "dex", "sign_in", "signin", "sso"]
                    .iter()
                    .any(|w| l.contains(w))
            }) =>
        {
            KfpError::AuthNeeded { status: code }
        }
        404 => KfpError::NotFound {
            what: what.to_owned(),
        },
        400 => KfpError::Refused { message },
        429 | 500..=599 => KfpError::Unavailable {
            detail: format!("HTTP {code}"),
        },
        _ => KfpError::Unexpected {
            status: code,
            detail: message,
        },
    }
}

/// KFP's own error text (`{"code":…, "message": …}`, or `error`), short and printable.
fn kfp_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let text = parsed
        .as_ref()
        .and_then(|v| v.get("message").or_else(|| v.get("error")))
        .and_then(Value::as_str)
        .unwrap_or(body);
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let clean = clean.trim().to_owned();
    if clean.is_empty() {
        "no detail given".into()
    } else {
        clean
    }
}

fn unavailable(e: &reqwest::Error, timeout: Duration) -> KfpError {
    let detail = if e.is_timeout() {
        format!("no answer within {} s", timeout.as_secs_f32())
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else if e.is_decode() || e.is_body() {
        "the answer was cut off".to_owned()
    } else {
        "the request failed".to_owned()
    };
    KfpError::Unavailable { detail }
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn run_from(v: &Value) -> Result<Run, KfpError> {
    let run_id = str_field(v, "run_id").ok_or_else(|| KfpError::Unexpected {
        status: 200,
        detail: "a run without run_id".into(),
    })?;
    Ok(Run {
        run_id,
        display_name: str_field(v, "display_name").unwrap_or_default(),
        state: str_field(v, "state").unwrap_or_else(|| "PENDING".into()),
        pipeline_version_id: v
            .get("pipeline_version_reference")
            .and_then(|r| str_field(r, "pipeline_version_id")),
    })
}

impl Pipelines for KfpClient {
    async fn find_run(&self, display_name: &str) -> Result<Option<Run>, KfpError> {
        let filter = json!({"predicates": [{
            "key": "display_name", "operation": "EQUALS", "string_value": display_name
        }]})
        .to_string();
        let mut query = vec![
            ("filter", filter.as_str()),
            ("page_size", "20"),
            ("sort_by", "created_at desc"),
        ];
        if let Some(ns) = &self.namespace {
            query.push(("namespace", ns));
        }
        if let Some(exp) = &self.experiment_id {
            query.push(("experiment_id", exp));
        }
        let url = self.url(&["runs"], &query)?;
        let answer = self.call(Method::GET, url, None, "the runs list").await?;
        let runs = answer
            .get("runs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // Trust the name, not the filter: a server that ignored the filter must not match.
        for r in &runs {
            if r.get("display_name").and_then(Value::as_str) == Some(display_name) {
                return run_from(r).map(Some);
            }
        }
        Ok(None)
    }

    async fn create_run(&self, run: &NewRun) -> Result<Run, KfpError> {
        let mut body = json!({
            "display_name": run.display_name,
            "description": "Started by ct-trigger after an approval in Slack.",
            "pipeline_version_reference": {
                "pipeline_id": run.pipeline_id,
                "pipeline_version_id": run.pipeline_version_id,
            },
            "runtime_config": {"parameters": run.parameters},
        });
        if let Some(exp) = &run.experiment_id {
            body["experiment_id"] = Value::from(exp.clone());
        }
        let url = self.url(&["runs"], &[])?;
        let what = format!(
            "pipeline {} version {}",
            run.pipeline_id, run.pipeline_version_id
        );
        let answer = self.call(Method::POST, url, Some(&body), &what).await?;
        run_from(&answer)
    }

    async fn get_run(&self, run_id: &str) -> Result<Run, KfpError> {
        let url = self.url(&["runs", run_id], &[])?;
        let answer = self
            .call(Method::GET, url, None, &format!("run {run_id}"))
            .await?;
        run_from(&answer)
    }

    async fn pipeline_id(&self, name: &str) -> Result<String, KfpError> {
        let query: Vec<(&str, &str)> = self
            .namespace
            .as_deref()
            .map(|ns| ("namespace", ns))
            .into_iter()
            .collect();
        let url = self.url(&["pipelines", "names", name], &query)?;
        let answer = self
            .call(Method::GET, url, None, &format!("pipeline {name:?}"))
            .await?;
        str_field(&answer, "pipeline_id").ok_or_else(|| KfpError::NotFound {
            what: format!("pipeline {name:?}"),
        })
    }

    async fn latest_version(&self, pipeline_id: &str) -> Result<String, KfpError> {
        let url = self.url(
            &["pipelines", pipeline_id, "versions"],
            &[("page_size", "1"), ("sort_by", "created_at desc")],
        )?;
        let what = format!("pipeline {pipeline_id}");
        let answer = self.call(Method::GET, url, None, &what).await?;
        answer
            .get("pipeline_versions")
            .and_then(Value::as_array)
            .and_then(|v| v.first())
            .and_then(|v| str_field(v, "pipeline_version_id"))
            .ok_or_else(|| KfpError::NotFound {
                what: format!("a version of pipeline {pipeline_id}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_reasons_a_person_can_act_on() {
        let c = |code: u16, loc: Option<&str>, body: &str| {
            classify(StatusCode::from_u16(code).unwrap(), loc, body, "pipeline p")
        };
        assert_eq!(c(401, None, ""), KfpError::AuthNeeded { status: 401 });
        assert_eq!(c(403, None, ""), KfpError::AuthNeeded { status: 403 });
        assert_eq!(
            c(
                302,
                Some("https://kf.example.com/oauth2/start?rd=/pipeline"),
                ""
            ),
            KfpError::AuthNeeded { status: 302 }
        );
        assert!(matches!(
            c(302, Some("/elsewhere"), ""),
            KfpError::Unexpected { .. }
        ));
        assert_eq!(
            c(404, None, "{}"),
            KfpError::NotFound {
                what: "pipeline p".into()
            }
        );
        assert_eq!(
            c(
                400,
                None,
                r#"{"code":3,"message":"unknown parameter \"lr\"\n"}"#
            ),
            KfpError::Refused {
                message: "unknown parameter \"lr\"".into()
            }
        );
        assert!(c(500, None, "").is_transient());
        assert!(c(503, None, "").is_transient());
        assert!(c(429, None, "").is_transient());
    }

    #[test]
    fn a_token_never_reaches_debug_output() {
        let client = KfpClient::new(
            "http://127.0.0.1:9/pipeline/",
            None,
            None,
            Some(Secret::new("kf-token-SECRET")),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("SECRET"));
        let url = client
            .url(&["runs", "a b"], &[("filter", "{\"x\":1}")])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/pipeline/apis/v2beta1/runs/a%20b?filter=%7B%22x%22%3A1%7D"
        );
    }
}
