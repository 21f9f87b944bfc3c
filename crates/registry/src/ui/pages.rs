//! The UI's handlers: each reads the session, asks the store and the policy engine exactly what
//! the API would, and renders a template.

use std::{collections::BTreeSet, sync::Arc};

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use catalog::Principal;
use registry_api::{LiveStatus, Review, ReviewState, ServerView};
use registry_store::{AuditFilter, ReviewFilter};
use serde::Deserialize;

use crate::{
    RegistryState,
    http::api::governance,
    ui::session::{
        LOGIN_COOKIE, PendingLogin, SESSION_COOKIE, SESSION_SECONDS, Session, random_token,
        same_secret,
    },
};

/// The signed-in person as templates see them.
pub(crate) struct Me {
    pub(crate) user: String,
    pub(crate) groups: String,
    pub(crate) csrf: String,
}

pub(crate) fn me(session: &Session) -> Me {
    Me {
        user: session.user.clone(),
        groups: session.groups.join(", "),
        csrf: session.csrf.clone(),
    }
}

/// The session, or a redirect to sign in.
pub(crate) fn signed_in(state: &RegistryState, headers: &HeaderMap) -> Result<Session, Redirect> {
    state
        .ui
        .signer
        .read::<Session>(headers, SESSION_COOKIE)
        .ok_or_else(|| Redirect::to("/ui/login"))
}

pub(crate) fn principal(session: &Session) -> Principal {
    Principal {
        user: session.user.clone(),
        groups: session.groups.clone(),
    }
}

/// A rendered page with the headers every UI response carries.
pub(crate) fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "a UI template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    me: Option<Me>,
    title: String,
    message: String,
}

fn message(
    status: StatusCode,
    me: Option<Me>,
    title: &str,
    message: impl Into<String>,
) -> Response {
    page(
        status,
        &MessagePage {
            me,
            title: title.to_owned(),
            message: message.into(),
        },
    )
}

pub(crate) async fn home() -> Redirect {
    Redirect::to("/ui/")
}

pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/app.css"),
    )
}

// ----- the catalog -----

#[derive(Deserialize, Default)]
pub(crate) struct CatalogQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    env: String,
    #[serde(default)]
    approval: String,
    #[serde(default)]
    classification: String,
}

pub(crate) struct Row {
    name: String,
    title: String,
    description: String,
    owner_team: String,
    support_channel: String,
    environment: String,
    approval: &'static str,
    approval_label: String,
    classification: String,
    tools: usize,
    status: String,
    status_class: &'static str,
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage {
    me: Option<Me>,
    query: CatalogQuery,
    rows: Vec<Row>,
    total: usize,
    teams: Vec<String>,
    environments: Vec<&'static str>,
    classifications: Vec<&'static str>,
}

fn approval(server: &ServerView) -> (&'static str, String) {
    let withheld = server.tools.iter().filter(|t| !t.approved).count();
    match (server.approved, withheld) {
        (false, _) => ("pending", "Not approved".to_owned()),
        (true, 0) => ("approved", "Approved".to_owned()),
        (true, n) => ("partial", format!("Approved, {n} tool(s) in review")),
    }
}

fn status_text(status: Option<&LiveStatus>) -> (String, &'static str) {
    match status {
        None => ("not probed yet".into(), "unknown"),
        Some(LiveStatus {
            ok: true,
            not_ready: Some(reason),
            ..
        }) => (format!("not ready: {reason}"), "down"),
        Some(s) if s.ok => (format!("up, {} ms", s.latency_ms), "up"),
        Some(s) => (
            format!("down: {}", s.error.as_deref().unwrap_or("unknown error")),
            "down",
        ),
    }
}

pub(crate) async fn catalog(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Query(query): Query<CatalogQuery>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect.into_response(),
    };
    let snapshot = state.snapshot();
    let statuses = state.store.list_statuses().await.unwrap_or_default();
    let needle = query.q.trim().to_lowercase();
    let rows: Vec<Row> = snapshot
        .servers
        .iter()
        .filter(|s| {
            needle.is_empty()
                || [&s.name, &s.description, &s.owner_team]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&needle))
                || s.title
                    .as_deref()
                    .is_some_and(|t| t.to_lowercase().contains(&needle))
                || s.tools
                    .iter()
                    .any(|t| t.definition.name.to_lowercase().contains(&needle))
        })
        .filter(|s| query.team.is_empty() || s.owner_team == query.team)
        .filter(|s| query.env.is_empty() || s.environment == query.env)
        .filter(|s| {
            query.classification.is_empty() || s.data_classification == query.classification
        })
        .filter(|s| query.approval.is_empty() || approval(s).0 == query.approval)
        .map(|s| {
            let (approval, approval_label) = approval(s);
            let (status, status_class) = status_text(statuses.iter().find(|x| x.server == s.name));
            Row {
                name: s.name.clone(),
                title: s.title.clone().unwrap_or_else(|| s.name.clone()),
                description: s.description.clone(),
                owner_team: s.owner_team.clone(),
                support_channel: s.support_channel.clone(),
                environment: s.environment.clone(),
                approval,
                approval_label,
                classification: s.data_classification.clone(),
                tools: s.tools.len(),
                status,
                status_class,
            }
        })
        .collect();
    let teams: BTreeSet<String> = snapshot
        .servers
        .iter()
        .map(|s| s.owner_team.clone())
        .collect();
    page(
        StatusCode::OK,
        &CatalogPage {
            me: Some(me(&session)),
            total: snapshot.servers.len(),
            rows,
            query,
            teams: teams.into_iter().collect(),
            environments: vec!["dev", "staging", "prod"],
            classifications: vec!["public", "internal", "confidential", "restricted"],
        },
    )
}

// ----- one server -----

pub(crate) struct ToolRow {
    name: String,
    description: String,
    approved: bool,
    who: String,
    you: bool,
    findings: Vec<String>,
    sensitivity: String,
    hash: String,
}

pub(crate) struct ReviewRow {
    id: String,
    kind: &'static str,
    state: &'static str,
    round: i64,
    scope: &'static str,
    reason: String,
    decided_by: String,
    comment: String,
}

pub(crate) struct VersionRow {
    version: String,
    revision: i64,
    when: String,
    by: String,
}

pub(crate) struct UsageRow {
    when: String,
    user: String,
    tool: String,
    outcome: &'static str,
    latency_ms: u64,
}

#[derive(Template)]
#[template(path = "server.html")]
struct ServerPage {
    me: Option<Me>,
    server: ServerView,
    approval: &'static str,
    approval_label: String,
    status: String,
    status_class: &'static str,
    status_checked: String,
    tools: Vec<ToolRow>,
    reviews: Vec<ReviewRow>,
    usage: Option<Vec<UsageRow>>,
    versions: Vec<VersionRow>,
    owners: String,
    owner_groups: String,
}

pub(crate) fn time(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn review_row(r: &Review) -> ReviewRow {
    ReviewRow {
        id: r.id.clone(),
        kind: r.kind.as_str(),
        state: r.state.as_str(),
        round: r.round,
        scope: r.scope.as_str(),
        reason: r.reason.clone(),
        decided_by: r.decided_by.clone().unwrap_or_default(),
        comment: r.comment.clone().unwrap_or_default(),
    }
}

pub(crate) async fn server(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect.into_response(),
    };
    let server = match state.store.get_server(&name).await {
        Ok(s) => s,
        Err(registry_store::StoreError::NotFound(_)) => {
            return message(
                StatusCode::NOT_FOUND,
                Some(me(&session)),
                "Not found",
                format!("No server named {name} is registered."),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "the UI could not read a server");
            return message(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(me(&session)),
                "Unavailable",
                "The registry's database is unavailable.",
            );
        }
    };
    let engine = state.engine();
    let viewer = policy::Principal::User {
        id: session.user.clone(),
        groups: session.groups.clone(),
    };
    let tools = server
        .tools
        .iter()
        .map(|t| {
            let name = &t.definition.name;
            let who = if server.approved && t.approved {
                let who = engine.who_can(&server.name, name, "api", None);
                if who.any_user {
                    "every signed-in user".to_owned()
                } else if who.groups.is_empty() {
                    "nobody".to_owned()
                } else {
                    format!("members of {}", who.groups.join(", "))
                }
            } else {
                // Nobody on production surfaces yet: say what the manifest will allow.
                let groups = t
                    .policy
                    .as_ref()
                    .map(|p| p.groups.clone())
                    .unwrap_or_else(|| server.allowed_groups.clone());
                let later = if groups.is_empty() {
                    "every signed-in user".to_owned()
                } else {
                    format!("members of {}", groups.join(", "))
                };
                format!("once approved, {later}; until then its owners, from development surfaces")
            };
            ToolRow {
                name: name.clone(),
                description: t.definition.description.clone().unwrap_or_default(),
                approved: t.approved,
                who,
                you: crate::service::decide(
                    &engine,
                    &viewer,
                    &server.name,
                    Some(name),
                    "api",
                    None,
                    None,
                )
                .allowed,
                findings: t
                    .findings
                    .iter()
                    .map(|f| format!("{}: {}", f.code, f.message))
                    .collect(),
                sensitivity: t.sensitivity.clone(),
                hash: t.definition_hash.chars().take(12).collect(),
            }
        })
        .collect();
    let reviews = state
        .store
        .list_reviews(&ReviewFilter {
            server: Some(server.name.clone()),
            state: None,
            limit: 50,
        })
        .await
        .unwrap_or_default()
        .iter()
        .map(review_row)
        .collect();
    let who = principal(&session);
    let may_see_usage = who.in_any(&state.auditor_groups)
        || server.owner_users.contains(&who.user)
        || who.in_any(&server.owner_groups);
    let usage = if may_see_usage {
        Some(
            state
                .store
                .list_audit(&AuditFilter {
                    server: Some(server.name.clone()),
                    limit: 20,
                    ..AuditFilter::default()
                })
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|r| UsageRow {
                    when: time(r.time_ms),
                    user: r.user,
                    tool: r.tool.unwrap_or_else(|| r.method.clone()),
                    outcome: r.outcome.as_str(),
                    latency_ms: r.latency_ms,
                })
                .collect(),
        )
    } else {
        None
    };
    // Every registration that changed the server, newest first.
    let versions = state
        .store
        .list_changes(&registry_store::ChangeFilter {
            subject: Some(format!("server:{}", server.name)),
            limit: 200,
        })
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.action == "server.registered" || c.action == "server.updated")
        .map(|c| VersionRow {
            version: c.detail["version"].as_str().unwrap_or("?").to_owned(),
            revision: c.detail["revision"].as_i64().unwrap_or_default(),
            when: time(c.time_ms),
            by: c.actor,
        })
        .collect();
    let statuses = state.store.list_statuses().await.unwrap_or_default();
    let live = statuses.iter().find(|s| s.server == server.name);
    let (status, status_class) = status_text(live);
    let (approval, approval_label) = approval(&server);
    page(
        StatusCode::OK,
        &ServerPage {
            me: Some(me(&session)),
            approval,
            approval_label,
            status,
            status_class,
            status_checked: live.map(|s| time(s.checked_at_ms)).unwrap_or_default(),
            tools,
            reviews,
            usage,
            versions,
            owners: server.owner_users.join(", "),
            owner_groups: server.owner_groups.join(", "),
            server,
        },
    )
}

// ----- the review queue -----

pub(crate) struct QueueItem {
    id: String,
    server: String,
    kind: &'static str,
    scope: &'static str,
    reason: String,
    opened: String,
    tools: Vec<(String, String)>,
    findings: Vec<String>,
    /// Why the viewer may not decide it, if they may not.
    blocked: String,
}

#[derive(Template)]
#[template(path = "reviews.html")]
struct ReviewsPage {
    me: Option<Me>,
    items: Vec<QueueItem>,
    decided: Vec<ReviewRow>,
    notice: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct ReviewsQuery {
    #[serde(default)]
    done: String,
}

pub(crate) async fn reviews(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Query(query): Query<ReviewsQuery>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect.into_response(),
    };
    let who = principal(&session);
    let pending = state
        .store
        .list_reviews(&ReviewFilter {
            server: None,
            state: Some(ReviewState::Pending),
            limit: 500,
        })
        .await
        .unwrap_or_default();
    let snapshot = state.snapshot();
    let mut items = Vec::new();
    for review in pending {
        let server = snapshot.servers.iter().find(|s| s.name == review.server);
        let reviewers = state.governance.reviewers(review.kind);
        let blocked = if !who.in_any(reviewers) {
            format!(
                "{} reviews are decided by [{}]",
                review.kind.as_str(),
                reviewers.join(", ")
            )
        } else if server.is_some_and(|s| s.owner_users.contains(&who.user)) {
            format!("you own {}", review.server)
        } else {
            String::new()
        };
        let tools = review
            .tools
            .keys()
            .map(|name| {
                let description = server
                    .and_then(|s| s.tools.iter().find(|t| t.definition.name == *name))
                    .and_then(|t| t.definition.description.clone())
                    .unwrap_or_default();
                (name.clone(), description)
            })
            .collect();
        items.push(QueueItem {
            id: review.id.clone(),
            server: review.server.clone(),
            kind: review.kind.as_str(),
            scope: review.scope.as_str(),
            reason: review.reason.clone(),
            opened: time(review.opened_at_ms),
            tools,
            findings: review
                .findings
                .iter()
                .map(|f| format!("{} ({}): {}", f.tool, f.code, f.message))
                .collect(),
            blocked,
        });
    }
    // Mine first: the reviews this person can decide.
    items.sort_by_key(|i| !i.blocked.is_empty());
    let decided = state
        .store
        .list_reviews(&ReviewFilter {
            server: None,
            state: None,
            limit: 30,
        })
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.state != ReviewState::Pending)
        .map(review_row)
        .collect();
    page(
        StatusCode::OK,
        &ReviewsPage {
            me: Some(me(&session)),
            items,
            decided,
            notice: query.done,
        },
    )
}

#[derive(Deserialize)]
pub(crate) struct Decision {
    csrf: String,
    decision: String,
    #[serde(default)]
    comment: String,
}

pub(crate) async fn decide(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Decision>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect.into_response(),
    };
    if !same_secret(&form.csrf, &session.csrf) {
        return message(
            StatusCode::FORBIDDEN,
            Some(me(&session)),
            "Refused",
            "This form is out of date or did not come from this site. Reload the page and try again.",
        );
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(me(&session)),
                "Invalid decision",
                format!("A decision is approve or reject, not {other:?}."),
            );
        }
    };
    match governance::decide_as(&state, &principal(&session), &id, approve, &form.comment).await {
        Ok(review) => {
            let done = format!("{} {}", review.id, review.state.as_str());
            let mut url = reqwest::Url::parse("http://ui/ui/reviews").expect("a static URL parses");
            url.query_pairs_mut().append_pair("done", &done);
            Redirect::to(&format!("/ui/reviews?{}", url.query().unwrap_or_default()))
                .into_response()
        }
        Err(e) => {
            let (status, text) = e.parts();
            message(status, Some(me(&session)), "Not decided", text)
        }
    }
}

// ----- the approvals inbox -----

pub(crate) struct ProposalRow {
    id: String,
    server: String,
    tool: String,
    user: String,
    arguments: String,
    /// What the call would change, as the tool previewed it (empty without a preview).
    preview: String,
    approver: String,
    reason: String,
    created: String,
    expires: String,
    state: &'static str,
    decided_by: String,
    comment: String,
}

fn proposal_row(p: &registry_api::Proposal) -> ProposalRow {
    let arguments = p.proposal.arguments.to_string();
    ProposalRow {
        id: p.proposal.id.clone(),
        server: p.proposal.server.clone(),
        tool: p.proposal.tool.clone(),
        user: p.proposal.user.clone(),
        arguments: arguments.chars().take(300).collect(),
        preview: p
            .proposal
            .preview
            .as_ref()
            .and_then(|v| v.get("summary"))
            .and_then(serde_json::Value::as_str)
            .map(|s| s.chars().take(500).collect())
            .unwrap_or_default(),
        approver: p.proposal.approver.to_string(),
        reason: p.proposal.reason.clone(),
        created: time(p.created_at_ms),
        expires: time(p.proposal.expires_at_ms),
        state: p.state.as_str(),
        decided_by: p.decided_by.clone().unwrap_or_default(),
        comment: p.comment.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    me: Option<Me>,
    query: ApprovalsQuery,
    inbox: Vec<ProposalRow>,
    mine: Vec<ProposalRow>,
    notice: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct ApprovalsQuery {
    /// Matches server, tool, requester or arguments.
    #[serde(default)]
    q: String,
    #[serde(default)]
    server: String,
    #[serde(default)]
    done: String,
}

pub(crate) async fn approvals(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Query(query): Query<ApprovalsQuery>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect.into_response(),
    };
    let who = principal(&session);
    let needle = query.q.trim().to_lowercase();
    let server = (!query.server.is_empty()).then(|| query.server.clone());
    let inbox = crate::http::api::proposals::visible_proposals(
        &state,
        &who,
        Some(registry_api::ProposalState::Pending),
        server,
        true,
        1000,
    )
    .await
    .unwrap_or_default()
    .iter()
    .map(proposal_row)
    .filter(|r| {
        needle.is_empty()
            || [&r.server, &r.tool, &r.user, &r.arguments]
                .iter()
                .any(|f| f.to_lowercase().contains(&needle))
    })
    .collect();
    let mine = state
        .store
        .list_proposals(
            &registry_store::ProposalFilter {
                user: Some(session.user.clone()),
                limit: 50,
                ..Default::default()
            },
            crate::http::api::servers::now_ms(),
        )
        .await
        .unwrap_or_default()
        .iter()
        .map(proposal_row)
        .collect();
    page(
        StatusCode::OK,
        &ApprovalsPage {
            me: Some(me(&session)),
            notice: query.done.clone(),
            query,
            inbox,
            mine,
        },
    )
}

/// The inbox's form: the session's CSRF token, the chosen ids (repeated `ids`), the decision and
/// one comment for all of them.
pub(crate) async fn decide_approvals(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect.into_response(),
    };
    let mut csrf = String::new();
    let mut decision = String::new();
    let mut comment = String::new();
    let mut ids = Vec::new();
    for (key, value) in form_urlencoded::parse(&body) {
        match key.as_ref() {
            "csrf" => csrf = value.into_owned(),
            "decision" => decision = value.into_owned(),
            "comment" => comment = value.into_owned(),
            "ids" => ids.push(value.into_owned()),
            _ => {}
        }
    }
    if !same_secret(&csrf, &session.csrf) {
        return message(
            StatusCode::FORBIDDEN,
            Some(me(&session)),
            "Refused",
            "This form is out of date or did not come from this site. Reload the page and try again.",
        );
    }
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(me(&session)),
                "Invalid decision",
                "A decision is approve or reject.",
            );
        }
    };
    if ids.is_empty() {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(me(&session)),
            "Nothing chosen",
            "Tick the proposals to decide, or use the buttons for all shown.",
        );
    }
    match crate::http::api::proposals::decide_batch(
        &state,
        &principal(&session),
        &ids,
        approve,
        &comment,
    )
    .await
    {
        Ok(outcome) => {
            let verb = if approve { "approved" } else { "rejected" };
            let mut done = format!("{} {verb}", outcome.decided.len());
            if !outcome.refused.is_empty() {
                done.push_str(&format!(", {} not decided", outcome.refused.len()));
            }
            let mut url =
                reqwest::Url::parse("http://ui/ui/approvals").expect("a static URL parses");
            url.query_pairs_mut().append_pair("done", &done);
            Redirect::to(&format!(
                "/ui/approvals?{}",
                url.query().unwrap_or_default()
            ))
            .into_response()
        }
        Err(e) => {
            let (status, text) = e.parts();
            message(status, Some(me(&session)), "Not decided", text)
        }
    }
}

// ----- signing in and out -----

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    me: Option<Me>,
    oidc: bool,
    dev: bool,
    error: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    error: String,
}

pub(crate) async fn login_page(
    State(state): State<Arc<RegistryState>>,
    Query(query): Query<LoginQuery>,
) -> Response {
    page(
        StatusCode::OK,
        &LoginPage {
            me: None,
            oidc: state.ui.oidc.is_some(),
            dev: state.ui.dev_sign_in,
            error: query.error,
        },
    )
}

/// Starts a session for `user` in `groups` and sends the browser to the catalog.
fn start_session(state: &RegistryState, user: String, groups: Vec<String>, via: &str) -> Response {
    let session = Session {
        user,
        groups,
        exp: identity::now_seconds() + SESSION_SECONDS,
        csrf: random_token(24),
        via: via.to_owned(),
    };
    match state
        .ui
        .signer
        .cookie(SESSION_COOKIE, &session, SESSION_SECONDS)
    {
        Ok(cookie) => {
            tracing::info!(user = %session.user, via, "signed in to the UI");
            let mut response = Redirect::to("/ui/").into_response();
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
                .headers_mut()
                .append(header::SET_COOKIE, state.ui.signer.clear(LOGIN_COOKIE));
            response
        }
        Err(e) => message(StatusCode::BAD_REQUEST, None, "Cannot sign in", e),
    }
}

#[derive(Deserialize)]
pub(crate) struct DevSignIn {
    user: String,
    #[serde(default)]
    groups: String,
}

pub(crate) async fn dev_sign_in(
    State(state): State<Arc<RegistryState>>,
    Form(form): Form<DevSignIn>,
) -> Response {
    if !state.ui.dev_sign_in {
        return message(
            StatusCode::NOT_FOUND,
            None,
            "Not available",
            "Development sign-in is off on this registry.",
        );
    }
    let user = form.user.trim().to_owned();
    if user.is_empty() || user.len() > 128 || user.chars().any(char::is_control) {
        return Redirect::to("/ui/login?error=Enter+a+user+name").into_response();
    }
    start_session(&state, user, catalog::parse_groups(&form.groups), "dev")
}

pub(crate) async fn oidc_start(State(state): State<Arc<RegistryState>>) -> Response {
    let Some(oidc) = &state.ui.oidc else {
        return message(
            StatusCode::NOT_FOUND,
            None,
            "Not available",
            "OpenID Connect sign-in is not configured on this registry.",
        );
    };
    match oidc.start(identity::now_seconds()).await {
        Ok((url, pending)) => {
            match state
                .ui
                .signer
                .cookie(LOGIN_COOKIE, &pending, crate::ui::session::LOGIN_SECONDS)
            {
                Ok(cookie) => {
                    let mut response = Redirect::to(&url).into_response();
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                    response
                }
                Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, None, "Cannot sign in", e),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not start an OpenID Connect sign-in");
            message(StatusCode::BAD_GATEWAY, None, "Cannot sign in", e)
        }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

pub(crate) async fn oidc_callback(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let Some(oidc) = &state.ui.oidc else {
        return Redirect::to("/ui/login").into_response();
    };
    if !callback.error.is_empty() {
        let text = format!("{} {}", callback.error, callback.error_description);
        return message(
            StatusCode::UNAUTHORIZED,
            None,
            "Sign-in refused",
            text.trim().to_owned(),
        );
    }
    let Some(pending) = state.ui.signer.read::<PendingLogin>(&headers, LOGIN_COOKIE) else {
        return message(
            StatusCode::BAD_REQUEST,
            None,
            "Sign-in expired",
            "This sign-in started in another browser or too long ago. Sign in again.",
        );
    };
    match oidc.finish(&pending, &callback.state, &callback.code).await {
        Ok(who) => start_session(&state, who.user, who.groups, "oidc"),
        Err(e) => {
            tracing::warn!(reason = %e, "refused an OpenID Connect sign-in");
            message(StatusCode::UNAUTHORIZED, None, "Sign-in refused", e)
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct Logout {
    csrf: String,
}

pub(crate) async fn logout(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Form(form): Form<Logout>,
) -> Response {
    if let Some(session) = state.ui.signer.read::<Session>(&headers, SESSION_COOKIE)
        && !same_secret(&form.csrf, &session.csrf)
    {
        return message(
            StatusCode::FORBIDDEN,
            Some(me(&session)),
            "Refused",
            "Reload the page and try again.",
        );
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, state.ui.signer.clear(SESSION_COOKIE));
    response
}
