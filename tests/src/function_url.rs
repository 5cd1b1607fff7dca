//! A local Function URL: plain HTTP in, a payload 2.0 event through the Lambda Runtime API
//! stand-in to the real function binary, its response back out as HTTP.

use crate::runtime::LambdaRuntime;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;
use std::time::Duration;

/// Turns a function's payload 2.0 response (`statusCode`, `headers`, `body`, `isBase64Encoded`)
/// into an HTTP response.
pub fn http_response(v: &Value) -> Response {
    let status = v["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let body = match v["body"].as_str() {
        Some(b) if v["isBase64Encoded"] == true => base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default(),
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let mut resp = Response::builder().status(status);
    if let Some(headers) = v["headers"].as_object() {
        for (k, val) in headers {
            if let Some(val) = val.as_str() {
                resp = resp.header(k, val);
            }
        }
    }
    resp.body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// Serves one function's URL on `addr`; returns its base URL.
pub async fn serve(runtime: LambdaRuntime, addr: &str) -> String {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind function url");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let runtime = runtime.clone();
            async move {
                let pairs: Vec<(String, String)> = headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                    .collect();
                let refs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                let event =
                    crate::events::function_url_event(method.as_str(), path, &refs, &body, true);
                let id = uuid::Uuid::new_v4().to_string();
                match runtime.invoke(&id, event, Duration::from_secs(30)).await {
                    Some(Ok(v)) => http_response(&v),
                    Some(Err(e)) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                    None => {
                        (StatusCode::GATEWAY_TIMEOUT, "the function did not answer").into_response()
                    }
                }
            }
        },
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    base
}
