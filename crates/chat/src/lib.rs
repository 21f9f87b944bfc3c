//! Switchboard's surfaces for people: the web chat (`web.rs`) and the chat bots (`bots.rs`,
//! a Slack-compatible Events API adapter and a generic webhook), served from one listener and
//! driven by one agent (`agent.rs`) that offers an OpenAI-compatible model (`llm.rs`) the
//! person's tools from discovery (`toolset.rs`) and calls them through the gateway as the person,
//! with a token this component mints for its surface (`tokens.rs`).

pub mod agent;
pub mod bots;
pub mod gateway;
pub mod llm;
pub mod tokens;
pub mod toolset;
pub mod web;

use std::sync::Arc;

use axum::{Json, Router, routing::get};
use registry_client::{Credentials, RegistryClient};
use service_kit::Shutdown;
use tokio::net::TcpListener;

pub use agent::{AgentConfig, DEFAULT_SYSTEM_PROMPT};
pub use bots::{BotConfig, Directory, SlackConfig};
pub use llm::LlmConfig;
pub use tokens::Minter;
pub use web::SignIn;

/// Everything the surfaces need.
pub struct ChatConfig {
    pub agent: AgentConfig,
    pub llm: LlmConfig,
    pub registry_url: String,
    pub minter: Minter,
    pub sign_in: SignIn,
    /// Mark cookies `Secure` (the chat is served over HTTPS).
    pub secure_cookies: bool,
    pub bots: BotConfig,
}

/// The web chat, the bots, the issuer's JWKS and health routes.
pub fn router(config: ChatConfig) -> Router {
    let minter = Arc::new(config.minter);
    let jwks = minter.jwks();
    let web_wait = config.agent.input_wait;
    let agent = |input_wait| {
        Arc::new(agent::Agent {
            config: AgentConfig {
                input_wait,
                ..config.agent.clone()
            },
            llm: llm::Llm::new(config.llm.clone()),
            // The agent always acts as the person, with a token it mints per request.
            registry: RegistryClient::new(&config.registry_url, Credentials::Static(String::new())),
            minter: minter.clone(),
        })
    };
    let web = Arc::new(web::WebChat::new(
        agent(web_wait),
        config.sign_in,
        config.secure_cookies,
    ));
    // A bot answers in a thread: nobody waits on a question there, approvals come later.
    let bots = Arc::new(bots::Bots::new(
        agent(std::time::Duration::ZERO),
        config.bots,
    ));
    Router::new()
        .merge(web::router(web))
        .merge(bots::router(bots))
        .route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = jwks.clone();
                async move { Json(jwks) }
            }),
        )
        .route("/", get(|| async { axum::response::Redirect::to("/chat") }))
        .merge(service_kit::health_routes())
}

pub async fn run(
    config: ChatConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "chat surfaces listening");
    service_kit::serve(listener, router(config), shutdown).await
}
