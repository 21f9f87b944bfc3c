//! `switchboard chat`: the web chat and the chat bots as a service of their own, and the flags
//! `up` shares with it (the model endpoint, the bots' secrets and directory). The service mints
//! its users' tokens with its own key (`keys/surfaces.json`); the gateway and the registry trust
//! it with `--trust-issuer <issuer>=<public URL>/.well-known/jwks.json`.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use identity::SigningKey;

use crate::commands::{DataDir, ExternalTrust, PlatformUrls};

/// The issuer of the surfaces' tokens under `switchboard up`.
pub(crate) const UP_ISSUER: &str = "urn:switchboard:surfaces";

/// Where the surfaces' signing key lives.
pub(crate) fn key_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("keys").join("surfaces.json")
}

/// The model the agent talks to.
#[derive(clap::Args, Clone)]
pub(crate) struct LlmArgs {
    /// Any OpenAI-compatible chat-completions API, up to `/v1` (Ollama, vLLM, llama.cpp's
    /// server, OpenAI).
    #[arg(
        long,
        env = "SWITCHBOARD_LLM_URL",
        default_value = "http://127.0.0.1:11434/v1"
    )]
    llm_url: String,
    #[arg(long, env = "SWITCHBOARD_LLM_MODEL", default_value = "llama3.1")]
    llm_model: String,
    #[arg(long, env = "SWITCHBOARD_LLM_API_KEY", hide_env_values = true)]
    llm_api_key: Option<String>,
    /// The most tools offered to the model at once; the rest are found with `search_tools`.
    #[arg(long, default_value_t = 12)]
    max_tools: usize,
    /// How long the web chat waits for a person to answer a tool's question or decide an
    /// approval before telling the model the call is pending.
    #[arg(long, default_value_t = 600)]
    input_wait_secs: u64,
}

/// The chat bots.
#[derive(clap::Args, Clone)]
pub(crate) struct BotArgs {
    /// Chat accounts and channels the bots know (TOML: `[users.<id>] user, groups` and
    /// `[channels] <id> = "<name>"`).
    #[arg(long)]
    bot_directory: Option<PathBuf>,
    /// The Slack app's signing secret (enables `/bots/slack/events`).
    #[arg(
        long,
        env = "SWITCHBOARD_SLACK_SIGNING_SECRET",
        hide_env_values = true,
        requires = "slack_bot_token"
    )]
    slack_signing_secret: Option<String>,
    /// The Slack app's bot token, for posting replies.
    #[arg(long, env = "SWITCHBOARD_SLACK_BOT_TOKEN", hide_env_values = true)]
    slack_bot_token: Option<String>,
    #[arg(long, default_value = "https://slack.com/api")]
    slack_api_url: String,
    /// The shared secret of the generic webhook (enables `/bots/webhook`).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
}

impl LlmArgs {
    pub(crate) fn model(&self) -> &str {
        &self.llm_model
    }

    pub(crate) fn url(&self) -> &str {
        &self.llm_url
    }

    pub(crate) fn configs(&self, gateway_url: &str) -> (chat::LlmConfig, chat::AgentConfig) {
        (
            chat::LlmConfig {
                base_url: self.llm_url.clone(),
                model: self.llm_model.clone(),
                api_key: self.llm_api_key.clone(),
            },
            chat::AgentConfig {
                gateway_url: gateway_url.to_owned(),
                max_tools: self.max_tools.max(1),
                input_wait: Duration::from_secs(self.input_wait_secs),
                system_prompt: chat::DEFAULT_SYSTEM_PROMPT.to_owned(),
            },
        )
    }
}

impl BotArgs {
    pub(crate) fn config(&self) -> anyhow::Result<chat::BotConfig> {
        Ok(chat::BotConfig {
            directory: match &self.bot_directory {
                Some(path) => chat::Directory::load(path)?,
                None => chat::Directory::default(),
            },
            slack: match (&self.slack_signing_secret, &self.slack_bot_token) {
                (Some(secret), Some(token)) => Some(chat::SlackConfig {
                    signing_secret: secret.clone(),
                    bot_token: token.clone(),
                    api_url: self.slack_api_url.clone(),
                }),
                _ => None,
            },
            webhook_secret: self.webhook_secret.clone(),
        })
    }
}

#[derive(clap::Args)]
pub(crate) struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 7706)]
    port: u16,
    /// Where people reach this service (its issuer by default).
    #[arg(long, default_value = "http://127.0.0.1:7706")]
    public_url: String,
    /// The `iss` of the tokens it mints (default: the public URL).
    #[arg(long)]
    issuer: Option<String>,
    #[command(flatten)]
    platform: PlatformUrls,
    /// A development sign-in form (any user, any groups). Without it, people sign in through an
    /// authenticating proxy that passes their access token, verified with --trust-issuer.
    #[arg(long)]
    dev_sign_in: bool,
    /// The issuers of the access tokens the proxy passes.
    #[command(flatten)]
    trust: ExternalTrust,
    /// Mark cookies Secure (serve the chat over HTTPS).
    #[arg(long)]
    secure_cookies: bool,
    #[command(flatten)]
    llm: LlmArgs,
    #[command(flatten)]
    bots: BotArgs,
    #[arg(long)]
    ready_file: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let key = SigningKey::load_or_create(&key_path(&args.data.data_dir))?;
    let public_url = args.public_url.trim_end_matches('/').to_owned();
    let issuer = args.issuer.clone().unwrap_or_else(|| public_url.clone());
    let audience = args
        .trust
        .audiences
        .first()
        .cloned()
        .unwrap_or_else(|| crate::dev::PLATFORM_AUDIENCE.to_owned());
    let sign_in = if args.dev_sign_in {
        chat::SignIn::Dev
    } else {
        let issuers = args.trust.issuers()?;
        anyhow::ensure!(
            !issuers.is_empty(),
            "say how people sign in: --trust-issuer for the access tokens your authenticating proxy passes, or --dev-sign-in for development"
        );
        chat::SignIn::Proxy(identity::Verifier::for_audiences(
            args.trust.audiences.clone(),
            issuers,
        )?)
    };
    let (llm, agent) = args
        .llm
        .configs(args.platform.gateway_url.trim_end_matches('/'));
    let config = chat::ChatConfig {
        agent,
        llm,
        registry_url: args.platform.registry_url.trim_end_matches('/').to_owned(),
        minter: chat::Minter::new(key, &issuer, &audience),
        sign_in,
        secure_cookies: args.secure_cookies,
        bots: args.bots.config()?,
    };
    let listener = service_kit::bind((args.host, args.port).into()).await?;
    let url = format!("http://{}", listener.local_addr()?);
    crate::commands::write_ready(
        args.ready_file.as_deref(),
        serde_json::json!({"chat_url": url, "issuer": issuer, "jwks_url": format!("{public_url}/.well-known/jwks.json")}),
    )?;
    println!(
        "web chat at {url}/chat; trust its tokens with --trust-issuer {issuer}={public_url}/.well-known/jwks.json"
    );
    chat::run(config, listener, service_kit::shutdown_on_signal()).await
}
