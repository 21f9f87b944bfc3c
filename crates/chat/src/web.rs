//! The web chat: a page where a signed-in person talks to the agent. Sign-in is the development
//! form (`switchboard up`) or an authenticating proxy in front (oauth2-proxy and the like) that
//! passes the person's verified access token. Each browser session keeps its conversation in
//! memory (it ends with the process or after eight hours); a message is answered as a stream of
//! server-sent events, and the page answers approvals and tools' questions inline. Every POST
//! carries the session's CSRF token in a header; cookies are HttpOnly and SameSite=Strict.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Form, Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use registry_client::Credentials;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    agent::{Agent, Answers, Event, Turn},
    llm::Message,
    tokens::{WEB_CHAT_SURFACE, Who},
};

const COOKIE: &str = "sb_chat";
const CSRF_HEADER: &str = "x-csrf-token";
/// How long a chat session lasts.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// The longest message a person may send.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// The most sessions one process keeps (the oldest go first).
const MAX_SESSIONS: usize = 10_000;

/// How people sign in to the web chat.
pub enum SignIn {
    /// A form that signs anyone in as any user and groups: development only.
    Dev,
    /// An authenticating proxy in front passes the person's access token (`Authorization:
    /// Bearer` or `X-Forwarded-Access-Token`), verified here.
    Proxy(Arc<identity::Verifier>),
}

struct Session {
    who: Who,
    csrf: String,
    expires: Instant,
    /// One answer at a time per session: a turn holds it.
    history: Arc<tokio::sync::Mutex<Vec<Message>>>,
    answers: Arc<Answers>,
}

pub struct WebChat {
    agent: Arc<Agent>,
    sign_in: SignIn,
    secure_cookies: bool,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl WebChat {
    pub fn new(agent: Arc<Agent>, sign_in: SignIn, secure_cookies: bool) -> WebChat {
        WebChat {
            agent,
            sign_in,
            secure_cookies,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn session(&self, headers: &HeaderMap) -> Option<Arc<Session>> {
        let id = cookie(headers, COOKIE)?;
        let mut sessions = self.lock();
        match sessions.get(&id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                sessions.remove(&id);
                None
            }
            None => None,
        }
    }

    /// A new session for `who`, and the cookie that names it.
    fn start(&self, who: Who) -> Result<HeaderValue, String> {
        let id = random_token();
        let session = Arc::new(Session {
            who,
            csrf: random_token(),
            expires: Instant::now() + SESSION_TTL,
            history: Arc::new(tokio::sync::Mutex::new(Vec::new())),
            answers: Arc::new(Answers::default()),
        });
        let mut sessions = self.lock();
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), session);
        HeaderValue::from_str(&format!(
            "{COOKIE}={id}; Path=/chat; HttpOnly; SameSite=Strict; Max-Age={}{}",
            SESSION_TTL.as_secs(),
            if self.secure_cookies { "; Secure" } else { "" }
        ))
        .map_err(|e| e.to_string())
    }
}

/// The web chat's routes, under `/chat`.
pub fn router(chat: Arc<WebChat>) -> Router {
    Router::new()
        .route("/chat", get(page))
        .route("/chat/login", get(login_page).post(dev_sign_in))
        .route("/chat/logout", post(logout))
        .route("/chat/api/messages", post(send))
        .route("/chat/api/answers", post(answer))
        .route("/chat/api/decisions", post(decide))
        .route("/chat/api/reset", post(reset))
        .route("/chat/app.js", get(script))
        .route("/chat/app.css", get(stylesheet))
        .with_state(chat)
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn random_token() -> String {
    use aws_lc_rs::rand::SecureRandom;
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page_headers() -> [(header::HeaderName, &'static str); 3] {
    [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ]
}

fn failure(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// The person an authenticating proxy vouches for, if any.
async fn proxied(chat: &WebChat, headers: &HeaderMap) -> Option<Result<Who, String>> {
    let SignIn::Proxy(verifier) = &chat.sign_in else {
        return None;
    };
    let token = headers
        .get("x-forwarded-access-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        })?;
    Some(match verifier.verify(&token).await {
        Ok(claims) => Ok(Who {
            user: claims.sub,
            groups: claims.groups,
            surface: WEB_CHAT_SURFACE.into(),
            channel: None,
        }),
        Err(e) => Err(format!("your sign-in was not accepted: {e}")),
    })
}

async fn page(State(chat): State<Arc<WebChat>>, headers: HeaderMap) -> Response {
    let session = match chat.session(&headers) {
        Some(s) => s,
        None => match proxied(&chat, &headers).await {
            Some(Ok(who)) => match chat.start(who) {
                Ok(cookie) => {
                    return ([(header::SET_COOKIE, cookie)], Redirect::to("/chat")).into_response();
                }
                Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e),
            },
            Some(Err(e)) => return failure(StatusCode::UNAUTHORIZED, e),
            None => return Redirect::to("/chat/login").into_response(),
        },
    };
    let html = include_str!("../assets/chat.html")
        .replace("{{csrf}}", &escape(&session.csrf))
        .replace("{{user}}", &escape(&session.who.user))
        .replace("{{model}}", &escape(chat.agent.llm.model()));
    (page_headers(), html).into_response()
}

async fn login_page(State(chat): State<Arc<WebChat>>) -> Response {
    let body = match chat.sign_in {
        SignIn::Dev => {
            r#"<form method="post" action="/chat/login">
<p>Development sign-in: any user, any groups.</p>
<label>User <input name="user" value="developer" required></label>
<label>Groups <input name="groups" value="employees"></label>
<button type="submit" id="sign-in">Sign in</button>
</form>"#
        }
        SignIn::Proxy(_) => {
            "<p>Sign in through your company's single sign-on: open this page through its proxy.</p>"
        }
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · Switchboard chat</title><link rel=\"stylesheet\" href=\"/chat/app.css\"></head><body class=\"login\"><h1>Switchboard chat</h1>{body}</body></html>"
    );
    (page_headers(), Html(html)).into_response()
}

#[derive(Deserialize)]
struct DevSignIn {
    user: String,
    #[serde(default)]
    groups: String,
}

async fn dev_sign_in(State(chat): State<Arc<WebChat>>, Form(form): Form<DevSignIn>) -> Response {
    if !matches!(chat.sign_in, SignIn::Dev) {
        return failure(
            StatusCode::NOT_FOUND,
            "development sign-in is off: sign in through your company's single sign-on",
        );
    }
    let user = form.user.trim();
    if user.is_empty() || user.len() > 200 {
        return failure(
            StatusCode::BAD_REQUEST,
            "a user name of 1 to 200 characters is needed",
        );
    }
    let who = Who {
        user: user.to_owned(),
        groups: catalog::parse_groups(&form.groups),
        surface: WEB_CHAT_SURFACE.into(),
        channel: None,
    };
    match chat.start(who) {
        Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to("/chat")).into_response(),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The session of a POST, which must carry its CSRF token.
fn authorized(chat: &WebChat, headers: &HeaderMap) -> Result<Arc<Session>, Box<Response>> {
    let session = chat.session(headers).ok_or_else(|| {
        Box::new(failure(
            StatusCode::UNAUTHORIZED,
            "sign in first (/chat/login)",
        ))
    })?;
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    let ok = sent.is_some_and(|sent| {
        aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), session.csrf.as_bytes())
            .is_ok()
    });
    if !ok {
        return Err(Box::new(failure(
            StatusCode::FORBIDDEN,
            "the request lacks this session's CSRF token; reload the page",
        )));
    }
    Ok(session)
}

async fn logout(State(chat): State<Arc<WebChat>>, headers: HeaderMap) -> Response {
    // The cookie is SameSite=Strict: another site cannot sign a person out.
    if let Some(id) = cookie(&headers, COOKIE) {
        chat.lock().remove(&id);
    }
    (
        [(
            header::SET_COOKIE,
            HeaderValue::from_static("sb_chat=; Path=/chat; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to("/chat/login"),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Send {
    text: String,
}

/// Answers a message as a stream of events (`data: <Event JSON>`), ending with `done` or
/// `error`.
async fn send(
    State(chat): State<Arc<WebChat>>,
    headers: HeaderMap,
    body: Result<Json<Send>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let session = match authorized(&chat, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Json(message) = match body {
        Ok(b) => b,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let text = message.text.trim().to_owned();
    if text.is_empty() || text.len() > MAX_MESSAGE_BYTES {
        return failure(
            StatusCode::BAD_REQUEST,
            format!("a message has 1 to {MAX_MESSAGE_BYTES} bytes"),
        );
    }
    let Ok(history) = session.history.clone().try_lock_owned() else {
        return failure(
            StatusCode::CONFLICT,
            "the previous answer is still being written; wait for it",
        );
    };
    let (events, stream) = mpsc::channel::<Event>(64);
    let agent = chat.agent.clone();
    tokio::spawn(async move {
        let mut history = history;
        let turn = Turn {
            who: &session.who,
            events,
            answers: session.answers.clone(),
        };
        agent.turn(&mut history, &text, &turn).await;
    });
    let body = futures::stream::unfold(stream, |mut stream| async move {
        let event = stream.recv().await?;
        let data = serde_json::to_string(&event).unwrap_or_default();
        Some((
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(format!("data: {data}\n\n"))),
            stream,
        ))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Answer {
    key: String,
    action: String,
    #[serde(default)]
    content: Option<Value>,
}

/// A person's answer to a tool's question.
async fn answer(
    State(chat): State<Arc<WebChat>>,
    headers: HeaderMap,
    body: Result<Json<Answer>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let session = match authorized(&chat, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Json(answer) = match body {
        Ok(b) => b,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !["accept", "decline", "cancel"].contains(&answer.action.as_str()) {
        return failure(
            StatusCode::BAD_REQUEST,
            "action is one of accept, decline, cancel",
        );
    }
    let mut result = json!({"action": answer.action});
    if answer.action == "accept" {
        result["content"] = answer.content.unwrap_or(json!({}));
    }
    if session.answers.give(&answer.key, result) {
        Json(json!({"ok": true})).into_response()
    } else {
        failure(
            StatusCode::NOT_FOUND,
            "nothing is waiting for that answer any more",
        )
    }
}

#[derive(Deserialize)]
struct Decision {
    proposal: String,
    approve: bool,
    #[serde(default)]
    comment: String,
}

/// A person's decision on a proposal, made as them in the registry (which says whether they
/// may); a turn waiting on it checks again.
async fn decide(
    State(chat): State<Arc<WebChat>>,
    headers: HeaderMap,
    body: Result<Json<Decision>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let session = match authorized(&chat, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let Json(decision) = match body {
        Ok(b) => b,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let comment = if decision.approve || !decision.comment.trim().is_empty() {
        decision.comment.trim().to_owned()
    } else {
        "rejected in the web chat".to_owned()
    };
    let token = match chat.agent.minter.mint(&session.who) {
        Ok(t) => t,
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let registry = chat
        .agent
        .registry
        .with_credentials(Credentials::Static(token));
    match registry
        .decide_proposals(
            std::slice::from_ref(&decision.proposal),
            decision.approve,
            &comment,
        )
        .await
    {
        Ok(outcome) => {
            if let Some(refused) = outcome.refused.first() {
                return failure(StatusCode::FORBIDDEN, refused.reason.clone());
            }
            session
                .answers
                .give(&decision.proposal, json!({"action": "accept"}));
            Json(json!({
                "ok": true,
                "state": outcome.decided.first().map(|p| p.state.as_str()),
            }))
            .into_response()
        }
        Err(e) => failure(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

async fn reset(State(chat): State<Arc<WebChat>>, headers: HeaderMap) -> Response {
    let session = match authorized(&chat, &headers) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match session.history.try_lock() {
        Ok(mut history) => {
            history.clear();
            Json(json!({"ok": true})).into_response()
        }
        Err(_) => failure(
            StatusCode::CONFLICT,
            "the previous answer is still being written; wait for it",
        ),
    }
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/chat.js"),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/chat.css"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use axum::http::Request;
    use identity::{Claims, KeySource, SigningKey, TrustedIssuer, Verifier};
    use tower::ServiceExt as _;

    use super::*;
    use crate::{
        agent::{AgentConfig, DEFAULT_SYSTEM_PROMPT},
        llm::{Llm, LlmConfig},
        tokens::Minter,
    };

    const IDP: &str = "https://idp.example.com";

    fn chat(sign_in: SignIn) -> Router {
        let agent = Arc::new(Agent {
            config: AgentConfig {
                gateway_url: "http://127.0.0.1:9".into(),
                max_tools: 12,
                input_wait: Duration::from_secs(1),
                system_prompt: DEFAULT_SYSTEM_PROMPT.into(),
            },
            llm: Llm::new(LlmConfig {
                base_url: "http://127.0.0.1:9/v1".into(),
                model: "m".into(),
                api_key: None,
            }),
            registry: registry_client::RegistryClient::new(
                "http://127.0.0.1:9",
                Credentials::Static(String::new()),
            ),
            minter: Arc::new(Minter::new(
                SigningKey::generate().unwrap(),
                "urn:test:surfaces",
                "switchboard",
            )),
        });
        router(Arc::new(WebChat::new(agent, sign_in, false)))
    }

    fn proxy(idp: &SigningKey) -> SignIn {
        SignIn::Proxy(
            Verifier::new(
                "switchboard",
                vec![TrustedIssuer::new(
                    IDP,
                    KeySource::Static(identity::jwks_document(&[idp])),
                )],
            )
            .unwrap(),
        )
    }

    async fn get(app: &Router, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        app.clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_proxy_s_verified_token_signs_a_person_in_and_anything_else_is_refused() {
        let idp = SigningKey::generate().unwrap();
        let app = chat(proxy(&idp));
        let token = idp
            .sign(&Claims::new(
                IDP,
                "alice",
                "switchboard",
                vec!["eng".into()],
                300,
            ))
            .unwrap();

        // No token: the sign-in page says to come through the proxy; dev sign-in is off.
        let page = get(&app, "/chat", &[]).await;
        assert_eq!(page.headers()[header::LOCATION], "/chat/login");
        let login = get(&app, "/chat/login", &[]).await;
        let text = to_bytes(login.into_body(), 1 << 20).await.unwrap();
        assert!(String::from_utf8_lossy(&text).contains("single sign-on"));
        let form = app
            .clone()
            .oneshot(
                Request::post("/chat/login")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from("user=mallory&groups=admins"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(form.status(), StatusCode::NOT_FOUND);

        // A token from another issuer, or a forged one, is refused.
        let other = SigningKey::generate().unwrap();
        let forged = other
            .sign(&Claims::new(IDP, "alice", "switchboard", vec![], 300))
            .unwrap();
        let refused = get(&app, "/chat", &[("x-forwarded-access-token", &forged)]).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

        // The proxy's token starts a session; the page then knows the person.
        let bearer = format!("Bearer {token}");
        let signed_in = get(&app, "/chat", &[("authorization", &bearer)]).await;
        assert_eq!(signed_in.headers()[header::LOCATION], "/chat");
        let cookie = signed_in.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let page = get(&app, "/chat", &[("cookie", &cookie)]).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = String::from_utf8_lossy(&to_bytes(page.into_body(), 1 << 20).await.unwrap())
            .into_owned();
        assert!(html.contains(r#"<span id="user">alice</span>"#), "{html}");

        // A POST without the session's CSRF token is refused.
        let send = app
            .clone()
            .oneshot(
                Request::post("/chat/api/messages")
                    .header("cookie", &cookie)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(r#"{"text":"hi"}"#))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(send.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn names_are_escaped_in_the_page() {
        let app = chat(SignIn::Dev);
        let signed_in = app
            .clone()
            .oneshot(
                Request::post("/chat/login")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from("user=%3Cscript%3Ex%3C%2Fscript%3E&groups=eng"))
                    .unwrap(),
            )
            .await
            .unwrap();
        let cookie = signed_in.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let page = get(&app, "/chat", &[("cookie", &cookie)]).await;
        let html = String::from_utf8_lossy(&to_bytes(page.into_body(), 1 << 20).await.unwrap())
            .into_owned();
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script>x"));
    }
}
