//! The Airflow 3 REST API (`/api/v2`) client: bearer-token authentication (a configured token,
//! or a user and password exchanged at `/auth/token` and renewed when refused), percent-encoded
//! path segments, and Airflow's error bodies turned into clear messages.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

/// How long a token obtained with a password is used before a new one is asked for (Airflow's
/// default lifetime is 24 h; a refused token is renewed at once anyway).
const TOKEN_REUSE: Duration = Duration::from_secs(3600);

/// How the server authenticates to Airflow.
#[derive(Clone)]
pub enum Auth {
    /// A bearer token issued to the server (any auth manager: FAB, Keycloak, Simple).
    Token(String),
    /// A service user's password, exchanged at `POST /auth/token` (the Simple auth manager of
    /// `airflow standalone`, or FAB's token endpoint).
    Password { user: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        match self {
            Auth::Token(_) => f.write_str("Token(…)"),
            Auth::Password { user, .. } => write!(f, "Password {{ user: {user:?}, … }}"),
        }
    }
}

/// Why an Airflow request failed, with Airflow's own explanation.
#[derive(Debug, thiserror::Error)]
pub enum AirflowError {
    /// 404: no such DAG, run, task instance or log.
    #[error("not found in Airflow: {0}")]
    NotFound(String),
    /// 400, 409, 422: Airflow refused the request as asked.
    #[error("Airflow refused the request: {0}")]
    Refused(String),
    /// 401, 403: the server's credentials are wrong or lack a permission.
    #[error("Airflow did not accept this server's credentials: {0}")]
    Unauthorized(String),
    /// Airflow could not be reached or failed.
    #[error("Airflow is unavailable: {0}")]
    Unavailable(String),
    /// Airflow answered something this client does not understand.
    #[error("Airflow answered something unexpected: {0}")]
    Invalid(String),
}

/// An Airflow deployment at `base` (`http://airflow:8080`).
pub struct AirflowClient {
    base: reqwest::Url,
    auth: Auth,
    http: reqwest::Client,
    /// The token obtained with the password, and when.
    token: Mutex<Option<(String, Instant)>>,
}

impl AirflowClient {
    pub fn new(base: &str, auth: Auth) -> anyhow::Result<AirflowClient> {
        let trimmed = base.trim_end_matches('/');
        anyhow::ensure!(
            trimmed.starts_with("http://") || trimmed.starts_with("https://"),
            "the Airflow URL must start with http:// or https://, not {base:?}"
        );
        let base = reqwest::Url::parse(&format!("{trimmed}/"))
            .map_err(|e| anyhow::anyhow!("the Airflow URL {base:?} is not a URL: {e}"))?;
        Ok(AirflowClient {
            base,
            auth,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            token: Mutex::new(None),
        })
    }

    /// The deployment's address, as configured.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `segments` below the base URL, each percent-encoded (run ids hold `:` and `+`).
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A bearer token: the configured one, or one obtained with the password (reused for a
    /// while, renewed when `renew`).
    async fn bearer(&self, renew: bool) -> Result<String, AirflowError> {
        let (user, password) = match &self.auth {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::Password { user, password } => (user, password),
        };
        let mut cached = self.token.lock().await;
        if !renew
            && let Some((token, at)) = cached.as_ref()
            && at.elapsed() < TOKEN_REUSE
        {
            return Ok(token.clone());
        }
        let url = self.url(&["auth", "token"]);
        let response = self
            .http
            .post(url.clone())
            .json(&serde_json::json!({ "username": user, "password": password }))
            .send()
            .await
            .map_err(|e| AirflowError::Unavailable(format!("POST {url}: {e}")))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let error = error_for(status, &body);
            return Err(match error {
                AirflowError::Unauthorized(detail) | AirflowError::Refused(detail) => {
                    AirflowError::Unauthorized(format!("user {user:?}: {detail}"))
                }
                other => other,
            });
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| AirflowError::Invalid(format!("POST {url} gave no access_token")))?
            .to_owned();
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    /// Sends a request under `/api/v2`, renewing a password-obtained token once if refused.
    async fn send(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, AirflowError> {
        let mut path = vec!["api", "v2"];
        path.extend_from_slice(segments);
        let url = self.url(&path);
        let mut renew = false;
        loop {
            let token = self.bearer(renew).await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token)
                .header(reqwest::header::ACCEPT, "application/json")
                .query(query);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| AirflowError::Unavailable(format!("{method} {url}: {e}")))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED
                && !renew
                && matches!(self.auth, Auth::Password { .. })
            {
                renew = true;
                continue;
            }
            let text = response
                .text()
                .await
                .map_err(|e| AirflowError::Unavailable(format!("{method} {url}: {e}")))?;
            let value: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                match serde_json::from_str(&text) {
                    Ok(value) => value,
                    Err(_) if !status.is_success() => Value::String(first_line(&text)),
                    Err(e) => {
                        return Err(AirflowError::Invalid(format!(
                            "{method} {url} did not answer JSON: {e}"
                        )));
                    }
                }
            };
            if !status.is_success() {
                return Err(error_for(status, &value));
            }
            return Ok(value);
        }
    }

    /// `GET /api/v2/{segments}` decoded as `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, AirflowError> {
        let value = self
            .send(reqwest::Method::GET, segments, query, None)
            .await?;
        decode(segments, value)
    }

    /// `POST /api/v2/{segments}` with a JSON body, decoded as `T`.
    pub async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &Value,
    ) -> Result<T, AirflowError> {
        let value = self
            .send(reqwest::Method::POST, segments, &[], Some(body))
            .await?;
        decode(segments, value)
    }

    /// `PATCH /api/v2/{segments}?query` with a JSON body, decoded as `T`.
    pub async fn patch<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        body: &Value,
    ) -> Result<T, AirflowError> {
        let value = self
            .send(reqwest::Method::PATCH, segments, query, Some(body))
            .await?;
        decode(segments, value)
    }

    /// Airflow's own health report (`/api/v2/monitor/health`, no authentication): `Ok` when
    /// the metadata database and the scheduler are healthy, else why not.
    pub async fn health(&self) -> Result<(), String> {
        let url = self.url(&["api", "v2", "monitor", "health"]);
        let response = self
            .http
            .get(url.clone())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("Airflow at {} is unreachable: {e}", self.base_url()))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("Airflow's health check answered HTTP {status}"));
        }
        let unhealthy: Vec<String> = ["metadatabase", "scheduler"]
            .into_iter()
            .filter(|part| body.pointer(&format!("/{part}/status")) != Some(&"healthy".into()))
            .map(str::to_owned)
            .collect();
        if unhealthy.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "Airflow reports these unhealthy: {}",
                unhealthy.join(", ")
            ))
        }
    }
}

fn decode<T: DeserializeOwned>(segments: &[&str], value: Value) -> Result<T, AirflowError> {
    serde_json::from_value(value)
        .map_err(|e| AirflowError::Invalid(format!("/api/v2/{}: {e}", segments.join("/"))))
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// Airflow's explanation in an error body: `{"detail": "…"}`, a list of validation errors
/// (`{"detail": [{"loc": […], "msg": "…"}]}`) or `{"detail": {"reason": …, "message": …}}`.
pub(crate) fn detail(body: &Value) -> String {
    let text = match body.get("detail").unwrap_or(body) {
        Value::String(s) => s.clone(),
        Value::Array(errors) => errors
            .iter()
            .map(|e| {
                let at: Vec<String> = e
                    .get("loc")
                    .and_then(Value::as_array)
                    .map(|loc| {
                        loc.iter()
                            .filter(|p| p.as_str() != Some("body"))
                            .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let msg = e.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                if at.is_empty() {
                    msg.to_owned()
                } else {
                    format!("{}: {msg}", at.join("."))
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(o) => ["reason", "message", "title"]
            .iter()
            .filter_map(|k| o.get(*k).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(": "),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    text.chars().take(500).collect()
}

fn error_for(status: reqwest::StatusCode, body: &Value) -> AirflowError {
    let mut detail = detail(body);
    if detail.is_empty() {
        detail = format!("HTTP {status}");
    }
    match status.as_u16() {
        404 => AirflowError::NotFound(detail),
        401 | 403 => AirflowError::Unauthorized(detail),
        400 | 409 | 422 => AirflowError::Refused(detail),
        _ => AirflowError::Unavailable(format!("HTTP {status}: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn airflow_error_bodies_become_clear_messages() {
        assert_eq!(
            detail(&json!({"detail": "The Dag with ID: `nope` was not found"})),
            "The Dag with ID: `nope` was not found"
        );
        assert_eq!(
            detail(
                &json!({"detail": [{"type": "missing", "loc": ["body", "logical_date"], "msg": "Field required"}]})
            ),
            "logical_date: Field required"
        );
        let conflict = json!({"detail": {"reason": "Unique constraint violation", "statement": "hidden", "message": "Serious error"}});
        assert_eq!(
            detail(&conflict),
            "Unique constraint violation: Serious error"
        );
        assert!(matches!(
            error_for(reqwest::StatusCode::CONFLICT, &conflict),
            AirflowError::Refused(_)
        ));
        assert!(matches!(
            error_for(reqwest::StatusCode::NOT_FOUND, &json!({"detail": "x"})),
            AirflowError::NotFound(_)
        ));
        assert!(matches!(
            error_for(
                reqwest::StatusCode::UNAUTHORIZED,
                &json!({"detail": "Invalid JWT token"})
            ),
            AirflowError::Unauthorized(_)
        ));
    }

    #[test]
    fn path_segments_are_encoded_and_secrets_never_printed() {
        let client = AirflowClient::new(
            "http://airflow.internal:8080/",
            Auth::Password {
                user: "svc".into(),
                password: "s3cret".into(),
            },
        )
        .unwrap();
        let url = client.url(&[
            "api",
            "v2",
            "dags",
            "etl",
            "dagRuns",
            "manual__2026-11-22T23:09:10+00:00",
        ]);
        assert_eq!(
            url.as_str(),
            "http://airflow.internal:8080/api/v2/dags/etl/dagRuns/manual__2026-11-22T23:09:10+00:00"
        );
        let odd = client.url(&["dags", "a/b?c"]);
        assert_eq!(odd.as_str(), "http://airflow.internal:8080/dags/a%2Fb%3Fc");
        assert!(!format!("{:?}", client.auth).contains("s3cret"));
        let prefixed = AirflowClient::new("https://x.example/airflow", Auth::Token("t".into()))
            .unwrap()
            .url(&["api", "v2", "dags"]);
        assert_eq!(prefixed.as_str(), "https://x.example/airflow/api/v2/dags");
        assert!(AirflowClient::new("airflow:8080", Auth::Token("t".into())).is_err());
    }
}

#[cfg(test)]
mod token_tests {
    //! The token exchange against a loopback endpoint that plays Airflow's `/auth/token` and
    //! rejects the first token it issued, as Airflow does once a token expires.
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    #[tokio::test]
    async fn a_refused_token_is_renewed_once_and_a_wrong_password_is_reported() {
        use axum::{Json, Router, http::HeaderMap, http::StatusCode, routing::get, routing::post};
        let issued = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route(
                "/auth/token",
                post({
                    let issued = issued.clone();
                    move |Json(body): Json<Value>| async move {
                        if body["password"] != "right" {
                            return (
                                StatusCode::UNAUTHORIZED,
                                Json(serde_json::json!({"detail": "Invalid credentials"})),
                            );
                        }
                        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
                        (
                            StatusCode::CREATED,
                            Json(serde_json::json!({"access_token": format!("token-{n}")})),
                        )
                    }
                }),
            )
            .route(
                "/api/v2/version",
                get(|headers: HeaderMap| async move {
                    // Only the second token is still valid.
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        == Some("Bearer token-2")
                    {
                        (
                            StatusCode::OK,
                            Json(serde_json::json!({"version": "3.3.2"})),
                        )
                    } else {
                        (
                            StatusCode::UNAUTHORIZED,
                            Json(serde_json::json!({"detail": "Invalid JWT token"})),
                        )
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let client = AirflowClient::new(
            &base,
            Auth::Password {
                user: "svc".into(),
                password: "right".into(),
            },
        )
        .unwrap();
        let version: Value = client.get(&["version"], &[]).await.unwrap();
        assert_eq!(version["version"], "3.3.2");
        assert_eq!(issued.load(Ordering::SeqCst), 2);
        // The renewed token is reused.
        let _: Value = client.get(&["version"], &[]).await.unwrap();
        assert_eq!(issued.load(Ordering::SeqCst), 2);

        let wrong = AirflowClient::new(
            &base,
            Auth::Password {
                user: "svc".into(),
                password: "wrong".into(),
            },
        )
        .unwrap();
        let error = wrong.get::<Value>(&["version"], &[]).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "Airflow did not accept this server's credentials: user \"svc\": Invalid credentials"
        );
    }
}
