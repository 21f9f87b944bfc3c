//! A typed client for the registry's REST API, used by the gateway, the CLI and SDK-built servers
//! registering themselves. It authenticates with a bearer token from a [`Credentials`] source.

use std::{sync::Arc, time::Duration};

use registry_api::{
    AccessAnswer, AuditPage, AuditRecord, CatalogVersion, ChangeList, ChangeRecord, DecideReview,
    Discovery, ErrorBody, PlatformPolicies, PolicyAnswer, PolicyQuery, RegisterServer, Review,
    ReviewList, ServerList, ServerView, Team, TeamList, WhoCan, WhoCanQuery,
};
use serde::de::DeserializeOwned;

/// Where the client's bearer token comes from.
#[derive(Clone)]
pub enum Credentials {
    /// A fixed token, for example from a file or the environment.
    Static(String),
    /// A function minting a fresh token per request (the development issuer, a token cache).
    Mint(Arc<dyn Fn() -> Result<String, String> + Send + Sync>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        match self {
            Credentials::Static(_) => f.write_str("Credentials::Static(..)"),
            Credentials::Mint(_) => f.write_str("Credentials::Mint(..)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("registry request failed: {0}")]
    Transport(String),
    #[error("registry answered {status}: {message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("could not obtain a token for the registry: {0}")]
    Credentials(String),
}

impl ClientError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, .. })
    }
}

#[derive(Clone, Debug)]
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
    credentials: Credentials,
}

impl RegistryClient {
    pub fn new(base_url: &str, credentials: Credentials) -> RegistryClient {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("the HTTP client configuration is static and valid");
        RegistryClient {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
            credentials,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub async fn register(&self, registration: &RegisterServer) -> Result<ServerView, ClientError> {
        let request = self.http.post(self.url("/v1/servers")).json(registration);
        self.send(request).await
    }

    pub async fn list_servers(&self) -> Result<Vec<ServerView>, ClientError> {
        let list: ServerList = self.send(self.http.get(self.url("/v1/servers"))).await?;
        Ok(list.servers)
    }

    /// What the policies decide for `query`, and which policies decide it.
    pub async fn policy_check(&self, query: &PolicyQuery) -> Result<PolicyAnswer, ClientError> {
        self.send(self.http.get(self.url("/v1/policy/check")).query(query))
            .await
    }

    /// Which groups may call a tool.
    pub async fn who_can(&self, query: &WhoCanQuery) -> Result<WhoCan, ClientError> {
        self.send(self.http.get(self.url("/v1/policy/who-can")).query(query))
            .await
    }

    /// The Cedar policies that apply to every server, and the development surfaces.
    pub async fn platform_policies(&self) -> Result<PlatformPolicies, ClientError> {
        self.send(self.http.get(self.url("/v1/policies/platform")))
            .await
    }

    /// A fingerprint of the catalog and platform policies, cheap to poll.
    pub async fn catalog_version(&self) -> Result<String, ClientError> {
        let body: CatalogVersion = self
            .send(self.http.get(self.url("/v1/catalog/version")))
            .await?;
        Ok(body.version)
    }

    pub async fn get_server(&self, name: &str) -> Result<ServerView, ClientError> {
        self.send(self.http.get(self.path(&["v1", "servers", name])?))
            .await
    }

    /// Reports definitions the server was seen serving that differ from the registry's record.
    pub async fn report_observed_tools(
        &self,
        server: &str,
        tools: Vec<registry_api::ToolDefinition>,
    ) -> Result<ServerView, ClientError> {
        let request = self
            .http
            .post(self.path(&["v1", "servers", server, "observed-tools"])?);
        self.send(request.json(&registry_api::ObservedTools { tools }))
            .await
    }

    /// Records the outcome of a live probe of `status.server`.
    pub async fn report_status(
        &self,
        status: &registry_api::LiveStatus,
    ) -> Result<registry_api::LiveStatus, ClientError> {
        let request = self
            .http
            .post(self.path(&["v1", "servers", &status.server, "status"])?);
        self.send(request.json(status)).await
    }

    /// The last live probe of every server.
    /// Announces a gateway replica; how many replicas are alive.
    pub async fn gateway_heartbeat(
        &self,
        beat: &registry_api::GatewayHeartbeat,
    ) -> Result<registry_api::GatewayReplicas, ClientError> {
        self.send(
            self.http
                .post(self.url("/v1/gateways/heartbeat"))
                .json(beat),
        )
        .await
    }

    pub async fn statuses(&self) -> Result<Vec<registry_api::LiveStatus>, ClientError> {
        let list: registry_api::StatusList =
            self.send(self.http.get(self.url("/v1/status"))).await?;
        Ok(list.statuses)
    }

    /// Proposes a call that needs approval (the gateway).
    pub async fn create_proposal(
        &self,
        proposal: &registry_api::NewProposal,
    ) -> Result<registry_api::Proposal, ClientError> {
        self.send(self.http.post(self.url("/v1/proposals")).json(proposal))
            .await
    }

    pub async fn get_proposal(&self, id: &str) -> Result<registry_api::Proposal, ClientError> {
        self.send(self.http.get(self.path(&["v1", "proposals", id])?))
            .await
    }

    /// Claims an approved proposal to run it; a 409 means someone else has, or it is not approved.
    pub async fn claim_proposal(&self, id: &str) -> Result<registry_api::Proposal, ClientError> {
        self.send(
            self.http
                .post(self.path(&["v1", "proposals", id, "claim"])?),
        )
        .await
    }

    /// Records what running a claimed proposal gave.
    pub async fn finish_proposal(
        &self,
        id: &str,
        ok: bool,
        result: &serde_json::Value,
    ) -> Result<registry_api::Proposal, ClientError> {
        let request = self
            .http
            .post(self.path(&["v1", "proposals", id, "finish"])?)
            .json(&serde_json::json!({ "ok": ok, "result": result }));
        self.send(request).await
    }

    /// Proposals the caller may see (or, with `decidable`, may decide), newest first.
    pub async fn list_proposals(
        &self,
        state: Option<&str>,
        server: Option<&str>,
        decidable: bool,
    ) -> Result<Vec<registry_api::Proposal>, ClientError> {
        let mut query = vec![("limit", "1000".to_owned())];
        if let Some(s) = state {
            query.push(("state", s.to_owned()));
        }
        if let Some(s) = server {
            query.push(("server", s.to_owned()));
        }
        if decidable {
            query.push(("decidable", "true".to_owned()));
        }
        let list: registry_api::ProposalList = self
            .send(self.http.get(self.url("/v1/proposals")).query(&query))
            .await?;
        Ok(list.proposals)
    }

    /// Approves (or rejects) a batch of proposals with one comment.
    pub async fn decide_proposals(
        &self,
        ids: &[String],
        approve: bool,
        comment: &str,
    ) -> Result<registry_api::BatchOutcome, ClientError> {
        let verb = if approve { "approve" } else { "reject" };
        let request = self.http.post(self.path(&["v1", "proposals", verb])?);
        self.send(request.json(&registry_api::DecideProposals {
            ids: ids.to_vec(),
            comment: comment.to_owned(),
        }))
        .await
    }

    pub async fn put_team(&self, team: &Team) -> Result<Team, ClientError> {
        let request = self.http.put(self.path(&["v1", "teams", &team.name])?);
        self.send(request.json(team)).await
    }

    pub async fn list_teams(&self) -> Result<Vec<Team>, ClientError> {
        let list: TeamList = self.send(self.http.get(self.url("/v1/teams"))).await?;
        Ok(list.teams)
    }

    /// Reviews, newest first, optionally of one server and in one state (`pending`, ...).
    pub async fn list_reviews(
        &self,
        server: Option<&str>,
        state: Option<&str>,
    ) -> Result<Vec<Review>, ClientError> {
        let mut query = vec![("limit", "1000")];
        if let Some(s) = server {
            query.push(("server", s));
        }
        if let Some(s) = state {
            query.push(("state", s));
        }
        let list: ReviewList = self
            .send(self.http.get(self.url("/v1/reviews")).query(&query))
            .await?;
        Ok(list.reviews)
    }

    pub async fn get_review(&self, id: &str) -> Result<Review, ClientError> {
        self.send(self.http.get(self.path(&["v1", "reviews", id])?))
            .await
    }

    /// Approves (or rejects) review `id` with a comment.
    pub async fn decide_review(
        &self,
        id: &str,
        approve: bool,
        comment: &str,
    ) -> Result<Review, ClientError> {
        let verb = if approve { "approve" } else { "reject" };
        let request = self.http.post(self.path(&["v1", "reviews", id, verb])?);
        self.send(request.json(&DecideReview {
            comment: comment.to_owned(),
        }))
        .await
    }

    /// Catalog changes, newest first, optionally about one subject (`server:<name>`, ...).
    pub async fn changes(
        &self,
        subject: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ChangeRecord>, ClientError> {
        let limit = limit.to_string();
        let mut query = vec![("limit", limit.as_str())];
        if let Some(s) = subject {
            query.push(("subject", s));
        }
        let list: ChangeList = self
            .send(self.http.get(self.url("/v1/changes")).query(&query))
            .await?;
        Ok(list.changes)
    }

    pub async fn access(
        &self,
        user: &str,
        groups: &[String],
        server: &str,
        tool: Option<&str>,
    ) -> Result<AccessAnswer, ClientError> {
        let groups = groups.join(",");
        let mut query = vec![
            ("user", user),
            ("groups", groups.as_str()),
            ("server", server),
        ];
        if let Some(tool) = tool {
            query.push(("tool", tool));
        }
        self.send(self.http.get(self.url("/v1/access")).query(&query))
            .await
    }

    /// Discovery for the caller identified by `token` (not the client's own credentials).
    /// What the holder of `token` may use, in a chat bot's `channel` when it speaks in one.
    pub async fn discovery_in(
        &self,
        token: &str,
        channel: Option<&str>,
    ) -> Result<Discovery, ClientError> {
        let mut request = self.http.get(self.url("/v1/discovery")).bearer_auth(token);
        if let Some(channel) = channel {
            request = request.query(&[("channel", channel)]);
        }
        Self::decode(request.send().await.map_err(transport)?).await
    }

    pub async fn discovery_as(&self, token: &str) -> Result<Discovery, ClientError> {
        self.discovery_in(token, None).await
    }

    /// The same registry with other credentials (one HTTP connection pool for both).
    pub fn with_credentials(&self, credentials: Credentials) -> RegistryClient {
        RegistryClient {
            base: self.base.clone(),
            http: self.http.clone(),
            credentials,
        }
    }

    pub async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), ClientError> {
        let request = self.http.post(self.url("/v1/audit")).json(records);
        let response = self.authorized(request)?.send().await.map_err(transport)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Self::api_error(response).await)
        }
    }

    pub async fn audit(
        &self,
        server: Option<&str>,
        user: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(s) = server {
            query.push(("server", s.to_owned()));
        }
        if let Some(u) = user {
            query.push(("user", u.to_owned()));
        }
        let page: AuditPage = self
            .send(self.http.get(self.url("/v1/audit")).query(&query))
            .await?;
        Ok(page.records)
    }

    /// The north-star report of `month` (`YYYY-MM`; default: this month).
    pub async fn insights(
        &self,
        month: Option<&str>,
    ) -> Result<registry_api::Insights, ClientError> {
        let mut request = self.http.get(self.url("/v1/insights"));
        if let Some(month) = month {
            request = request.query(&[("month", month)]);
        }
        self.send(request).await
    }

    /// Rates a tool's answer as the caller.
    pub async fn give_feedback(
        &self,
        feedback: &registry_api::NewFeedback,
    ) -> Result<registry_api::Feedback, ClientError> {
        self.send(self.http.post(self.url("/v1/feedback")).json(feedback))
            .await
    }

    /// Every audit record matching `query` (`format=jsonl|csv`, filters), as the registry
    /// streams it.
    pub async fn export_audit(
        &self,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, ClientError> {
        let request = self.http.get(self.url("/v1/audit/export")).query(query);
        let response = self.authorized(request)?.send().await.map_err(transport)?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(Self::api_error(response).await)
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The URL of `segments` under the base, each percent-encoded, so a name can never step
    /// outside its place in the path.
    fn path(&self, segments: &[&str]) -> Result<reqwest::Url, ClientError> {
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|e| ClientError::Transport(format!("registry URL {:?}: {e}", self.base)))?;
        url.path_segments_mut()
            .map_err(|()| {
                ClientError::Transport(format!("registry URL {:?} cannot take a path", self.base))
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let token = match &self.credentials {
            Credentials::Static(t) => t.clone(),
            Credentials::Mint(mint) => mint().map_err(ClientError::Credentials)?,
        };
        Ok(request.bearer_auth(token))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.authorized(request)?.send().await.map_err(transport)?;
        Self::decode(response).await
    }

    async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
        if !response.status().is_success() {
            return Err(Self::api_error(response).await);
        }
        response
            .json()
            .await
            .map_err(|e| ClientError::Transport(format!("decode response: {e}")))
    }

    async fn api_error(response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        match response.json::<ErrorBody>().await {
            Ok(body) => ClientError::Api {
                status,
                code: body.code,
                message: body.message,
            },
            Err(_) => ClientError::Api {
                status,
                code: "unknown".into(),
                message: "no error body".into(),
            },
        }
    }
}

fn transport(e: reqwest::Error) -> ClientError {
    ClientError::Transport(e.to_string())
}
