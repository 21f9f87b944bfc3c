//! `switchboard server <name>`: run one bundled MCP server over HTTP or stdio, optionally
//! registering it with a registry.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use catalog::Manifest;
use identity::{KeySource, TrustedIssuer, Verifier};
use registry_api::{RegisterServer, ToolDefinition};
use registry_client::{Credentials, RegistryClient};
use rmcp::{handler::server::router::tool::ToolRouter, model::ServerConfig};
use server_knowledge::{Knowledge, KnowledgeIndex};
use server_sdk::{Caller, Governance, HttpOptions, IdentityMode};
use server_spark::{Spark, SparkSource};
use server_sql::{SqlEngine, SqlServer};

use crate::{
    commands::{DataDir, gateway::dev_service_credentials, write_ready},
    dev,
};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand)]
enum Which {
    /// Search and read runbooks, guides and policies (tantivy BM25).
    Knowledge {
        /// Index this folder of Markdown/text files instead of the bundled sample corpus.
        #[arg(long)]
        docs: Option<PathBuf>,
        /// Index the files of this git repository instead (a URL `git clone` takes); it is
        /// checked out under the data directory and fetched again at every re-index check.
        #[arg(long, conflicts_with = "docs")]
        docs_git: Option<String>,
        /// The branch of --docs-git (default: the repository's default branch).
        #[arg(long, requires = "docs_git")]
        docs_git_branch: Option<String>,
        /// Also index the records other servers write into this folder (for example the Spark
        /// server's root-cause analyses, `switchboard server spark --rca-dir`), under `records/`.
        #[arg(long)]
        records: Option<PathBuf>,
        /// Seconds between checks of the folders for changed, new or removed documents, which
        /// are then re-indexed (0: never).
        #[arg(long, default_value_t = 10)]
        reindex_every_secs: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Query the data warehouse with read-only SQL (embedded DataFusion over Parquet/CSV files;
    /// by default a generated sample warehouse of ads and finance data).
    Sql {
        #[command(flatten)]
        sql: SqlArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Find Spark applications and diagnose their failures, from a Spark History Server or a
    /// folder of Spark event logs (by default sample logs of real failing jobs).
    Spark {
        #[command(flatten)]
        spark: SparkArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Find Airflow DAGs, runs, task instances, task logs and import errors, and trigger, clear,
    /// pause and unpause with the pipeline owners' approval (Airflow 3's REST API).
    Airflow {
        #[command(flatten)]
        airflow: AirflowArgs,
        #[command(flatten)]
        common: Common,
    },
    /// The MCP conformance fixture server, for the official conformance suite.
    Conformance {
        #[command(flatten)]
        common: Common,
    },
    /// A declarative server: the tools of a tools file, each one call of an HTTP API (give its
    /// manifest with --manifest).
    Http {
        /// The tools file (TOML: each tool's method, path, arguments and response shape).
        #[arg(long)]
        tools: PathBuf,
        /// Where the API is (overrides the file's `base_url`).
        #[arg(long)]
        base_url: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// Where the SQL server's data is and how much one query may take.
#[derive(clap::Args, Clone)]
pub(crate) struct SqlArgs {
    /// The engine behind the tools: embedded `datafusion` (default), `trino`, `presto` or
    /// `postgres`.
    #[arg(long, default_value = "datafusion", value_parser = ["datafusion", "trino", "presto", "postgres"])]
    pub(crate) engine: String,
    /// The Trino/Presto coordinator (`http://trino:8080`).
    #[arg(long)]
    pub(crate) trino_url: Option<String>,
    /// The `Authorization` header value for the coordinator (`Basic …`, `Bearer …`).
    #[arg(long, env = "SWITCHBOARD_TRINO_AUTHORIZATION", hide_env_values = true)]
    pub(crate) trino_authorization: Option<String>,
    /// The PostgreSQL database (`postgres://reader@db/warehouse`).
    #[arg(long, env = "SWITCHBOARD_SQL_POSTGRES_URL", hide_env_values = true)]
    pub(crate) postgres_url: Option<String>,
    /// Run each PostgreSQL statement as the caller's role (the connecting user must be a member
    /// of every caller's role).
    #[arg(long)]
    pub(crate) postgres_set_role: bool,
    /// Serve this folder (`<schema>/<table>.parquet` or `.csv`) instead of the sample warehouse,
    /// which is generated under the data directory on first run.
    #[arg(long)]
    pub(crate) warehouse: Option<PathBuf>,
    /// The catalog the folder's schemas belong to (datafusion), or that `schema.table` names
    /// mean (trino, presto).
    #[arg(long, default_value = "warehouse")]
    pub(crate) catalog: String,
    /// Rows one query returns at most.
    #[arg(long, default_value_t = 1000)]
    pub(crate) max_rows: usize,
    /// Bytes of rows (as JSON) one query returns at most.
    #[arg(long, default_value_t = 256 * 1024)]
    pub(crate) max_result_bytes: usize,
    /// Seconds after which a query is cancelled on the engine.
    #[arg(long, default_value_t = 30)]
    pub(crate) query_timeout_secs: u64,
    /// The size of the generated sample warehouse (when no --warehouse is given).
    #[arg(skip = server_sql::sample::Scale::FULL)]
    pub(crate) sample: server_sql::sample::Scale,
}

impl Default for SqlArgs {
    fn default() -> SqlArgs {
        SqlArgs {
            engine: "datafusion".into(),
            trino_url: None,
            trino_authorization: None,
            postgres_url: None,
            postgres_set_role: false,
            warehouse: None,
            catalog: "warehouse".into(),
            max_rows: 1000,
            max_result_bytes: 256 * 1024,
            query_timeout_secs: 30,
            sample: server_sql::sample::Scale::FULL,
        }
    }
}

/// Where the Spark server reads applications from.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct SparkArgs {
    /// The Spark History Server (`http://history:18080`).
    #[arg(long, conflicts_with = "event_logs")]
    pub(crate) history_server: Option<String>,
    /// A folder of Spark event logs (`spark.eventLog.dir`) instead; without either, the sample
    /// logs, copied under the data directory on first run.
    #[arg(long)]
    pub(crate) event_logs: Option<PathBuf>,
    /// Where `record_rca` writes root-cause analyses, as Markdown, for the Knowledge server to
    /// index (its `--records` folder, or a folder below it).
    #[arg(long)]
    pub(crate) rca_dir: Option<PathBuf>,
}

/// The Airflow deployment the Airflow server reads and acts on.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct AirflowArgs {
    /// The Airflow 3 deployment (`http://airflow:8080`). Without it the server still runs and
    /// says, on every call and in its live status, how to connect one.
    #[arg(long)]
    pub(crate) airflow_url: Option<String>,
    /// A bearer token for Airflow's REST API (from your auth manager: FAB, Keycloak, …).
    #[arg(long, env = "SWITCHBOARD_AIRFLOW_TOKEN", hide_env_values = true)]
    pub(crate) airflow_token: Option<String>,
    /// A service user whose password is exchanged for tokens at Airflow's `/auth/token`.
    #[arg(long)]
    pub(crate) airflow_user: Option<String>,
    /// The password of --airflow-user.
    #[arg(long, env = "SWITCHBOARD_AIRFLOW_PASSWORD", hide_env_values = true)]
    pub(crate) airflow_password: Option<String>,
}

impl AirflowArgs {
    /// The configured Airflow client, or `None` when no Airflow is configured.
    pub(crate) fn client(&self) -> anyhow::Result<Option<Arc<server_airflow::AirflowClient>>> {
        let Some(url) = &self.airflow_url else {
            anyhow::ensure!(
                self.airflow_token.is_none() && self.airflow_user.is_none(),
                "Airflow credentials were given without --airflow-url"
            );
            return Ok(None);
        };
        let auth = match (
            &self.airflow_token,
            &self.airflow_user,
            &self.airflow_password,
        ) {
            (Some(token), None, _) => server_airflow::Auth::Token(token.clone()),
            (None, Some(user), Some(password)) => server_airflow::Auth::Password {
                user: user.clone(),
                password: password.clone(),
            },
            (Some(_), Some(_), _) => {
                anyhow::bail!("give --airflow-token or --airflow-user, not both")
            }
            (None, Some(_), None) => anyhow::bail!(
                "--airflow-user needs --airflow-password (or SWITCHBOARD_AIRFLOW_PASSWORD)"
            ),
            (None, None, _) => anyhow::bail!(
                "--airflow-url needs credentials: --airflow-token, or --airflow-user with --airflow-password"
            ),
        };
        Ok(Some(Arc::new(server_airflow::AirflowClient::new(
            url, auth,
        )?)))
    }
}

#[derive(clap::Args)]
pub(crate) struct Common {
    #[arg(long, default_value = "127.0.0.1:7702")]
    listen: SocketAddr,
    /// Serve MCP over stdin/stdout instead of HTTP (the caller is SWITCHBOARD_USER / SWITCHBOARD_GROUPS).
    #[arg(long)]
    stdio: bool,
    /// Trust identity assertions from the gateway whose keys are at this JWKS URL.
    #[arg(long, env = "SWITCHBOARD_GATEWAY_JWKS")]
    gateway_jwks: Option<String>,
    /// The `iss` of the gateway's assertions (default: the JWKS URL's origin).
    #[arg(long, env = "SWITCHBOARD_GATEWAY_ISSUER")]
    gateway_issuer: Option<String>,
    /// Accept calls that carry no identity, as `anonymous` (local development and conformance only).
    #[arg(long)]
    allow_anonymous: bool,
    /// Host names the MCP endpoint answers to (default: loopback only).
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// Use this manifest instead of the bundled one.
    #[arg(long, env = "SWITCHBOARD_MANIFEST")]
    manifest: Option<PathBuf>,
    /// Register with this registry once listening.
    #[arg(long)]
    register_with: Option<String>,
    /// Bearer token for registering (or mint one with --dev-issuer).
    #[arg(long, env = "SWITCHBOARD_REGISTRY_TOKEN", hide_env_values = true)]
    registry_token: Option<String>,
    /// Mint the registration token from the local development issuer.
    #[arg(long)]
    dev_issuer: bool,
    /// The endpoint the gateway should use (default: http://<listen address>/mcp).
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long, default_value = "dev")]
    environment: String,
    /// The server's own Cedar policies (a file), registered with it and enforced by it; default:
    /// the policies the server ships with.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// Write `{"url": ...}` here once listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Knowledge {
            docs,
            docs_git,
            docs_git_branch,
            records,
            reindex_every_secs,
            common,
        } => {
            let manifest = load_manifest(common.manifest.as_deref(), server_knowledge::MANIFEST)?;
            let rules = Rules {
                cedar: load_policies(common.policies.as_deref(), "")?,
                environment: common.environment.clone(),
            };
            let git = docs_git.map(|url| server_knowledge::GitSource {
                dir: common
                    .data
                    .data_dir
                    .join("knowledge-git")
                    .join(checkout_name(&url)),
                url,
                branch: docs_git_branch,
            });
            let sources = server_knowledge::Sources {
                docs: git.as_ref().map(|g| g.dir.clone()).or(docs),
                git,
                records,
            };
            let knowledge = build_knowledge(sources, reindex_every_secs, manifest, rules)?;
            if common.stdio {
                return server_sdk::serve_stdio(knowledge.handler()).await;
            }
            let identity = identity_mode(&common, &knowledge.governance.manifest().server.name)?;
            let router = knowledge.http_router(identity, common.allowed_hosts.clone());
            serve(&common, router, knowledge.registration_parts()).await
        }
        Which::Sql { sql, common } => {
            let manifest = load_manifest(common.manifest.as_deref(), server_sql::MANIFEST)?;
            let rules = Rules {
                cedar: load_policies(common.policies.as_deref(), server_sql::POLICIES)?,
                environment: common.environment.clone(),
            };
            let built = build_sql(&sql, manifest, rules, &common.data.data_dir).await?;
            if common.stdio {
                return server_sdk::serve_stdio(built.handler()).await;
            }
            let identity = identity_mode(&common, &built.governance.manifest().server.name)?;
            let router = built.http_router(identity, common.allowed_hosts.clone());
            serve(&common, router, built.registration_parts()).await
        }
        Which::Spark { spark, common } => {
            let manifest = load_manifest(common.manifest.as_deref(), server_spark::MANIFEST)?;
            let rules = Rules {
                cedar: load_policies(common.policies.as_deref(), "")?,
                environment: common.environment.clone(),
            };
            let built = build_spark(&spark, manifest, rules, &common.data.data_dir)?;
            if common.stdio {
                return server_sdk::serve_stdio(built.handler()).await;
            }
            let identity = identity_mode(&common, &built.governance.manifest().server.name)?;
            let router = built.http_router(identity, common.allowed_hosts.clone());
            serve(&common, router, built.registration_parts()).await
        }
        Which::Airflow { airflow, common } => {
            let manifest = load_manifest(common.manifest.as_deref(), server_airflow::MANIFEST)?;
            let rules = Rules {
                cedar: load_policies(common.policies.as_deref(), "")?,
                environment: common.environment.clone(),
            };
            let built = build_airflow(&airflow, manifest, rules)?;
            if common.stdio {
                return server_sdk::serve_stdio(built.handler()).await;
            }
            let identity = identity_mode(&common, &built.governance.manifest().server.name)?;
            let router = built.http_router(identity, common.allowed_hosts.clone());
            serve(&common, router, built.registration_parts()).await
        }
        Which::Http {
            tools,
            base_url,
            common,
        } => {
            let path = common.manifest.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "a declarative server needs its manifest: --manifest switchboard.toml"
                )
            })?;
            let manifest = load_manifest(Some(path), "")?;
            let rules = Rules {
                cedar: load_policies(common.policies.as_deref(), "")?,
                environment: common.environment.clone(),
            };
            let built = build_http(&tools, base_url, manifest, rules)?;
            if common.stdio {
                return server_sdk::serve_stdio(built.handler()).await;
            }
            let identity = identity_mode(&common, &built.governance.manifest().server.name)?;
            let router = built.http_router(identity, common.allowed_hosts.clone());
            serve(&common, router, built.registration_parts()).await
        }
        Which::Conformance { common } => {
            let fixture = server_conformance::Fixture::new()?;
            if common.stdio {
                return server_sdk::serve_stdio(fixture.handler()).await;
            }
            let identity = identity_mode(&common, server_conformance::NAME)?;
            let router = fixture.http_router(identity, common.allowed_hosts.clone());
            serve(
                &common,
                router,
                (
                    fixture.manifest().clone(),
                    tool_definitions(fixture.tools()),
                    load_policies(common.policies.as_deref(), "")?,
                ),
            )
            .await
        }
    }
}

/// Builds one handler of a bundled server from its server info, governed tool router and
/// governance.
type MakeHandler<H> = dyn Fn(ServerConfig, ToolRouter<H>, Governance) -> H + Send + Sync;

/// A server's own Cedar policies and the environment it registers in.
pub(crate) struct Rules {
    pub(crate) cedar: String,
    pub(crate) environment: String,
}

/// The Cedar policies in the file at `path`, else the server's bundled ones.
pub(crate) fn load_policies(
    path: Option<&std::path::Path>,
    bundled: &str,
) -> anyhow::Result<String> {
    match path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display())),
        None => Ok(bundled.to_owned()),
    }
}

/// A governed bundled server, ready to serve over HTTP or stdio.
pub(crate) struct Built<H: Send + Sync + 'static> {
    pub(crate) governance: Governance,
    make: Arc<MakeHandler<H>>,
    router: ToolRouter<H>,
    policies: String,
    /// Whether the server can serve now (`/readyz`); `None`: whenever it runs.
    ready: Option<server_sdk::ReadyCheck>,
}

impl<H> Built<H>
where
    H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    /// Governs `tools` with `manifest` and the server's own policies; `make` builds each
    /// handler.
    pub(crate) fn new(
        manifest: Manifest,
        rules: Rules,
        tools: ToolRouter<H>,
        make: impl Fn(ServerConfig, ToolRouter<H>, Governance) -> H + Send + Sync + 'static,
    ) -> anyhow::Result<Built<H>> {
        let governance = Governance::new(manifest, Caller::local())
            .and_then(|g| g.with_policies(&rules.cedar, &tools.list_all(), &rules.environment))
            .map_err(problems)?;
        let router = governance.govern(tools).map_err(problems)?;
        Ok(Built {
            governance,
            make: Arc::new(make),
            router,
            policies: rules.cedar,
            ready: None,
        })
    }

    /// Reports readiness with `check` (`/readyz`, and so the gateway's live status).
    pub(crate) fn with_readiness(mut self, check: server_sdk::ReadyCheck) -> Built<H> {
        self.ready = Some(check);
        self
    }

    pub(crate) fn handler(&self) -> H {
        (self.make)(
            server_sdk::server_info(self.governance.manifest()),
            self.router.clone(),
            self.governance.clone(),
        )
    }

    pub(crate) fn http_router(
        &self,
        identity: IdentityMode,
        allowed_hosts: Vec<String>,
    ) -> axum::Router {
        let (make, router, info, governance) = (
            self.make.clone(),
            self.router.clone(),
            server_sdk::server_info(self.governance.manifest()),
            self.governance.clone(),
        );
        server_sdk::http_router(
            move || make(info.clone(), router.clone(), governance.clone()),
            self.governance.clone(),
            HttpOptions {
                identity,
                allowed_hosts,
                ready: self.ready.clone(),
            },
        )
    }

    /// What the server registers: its manifest, tools and own policies.
    pub(crate) fn registration_parts(&self) -> (Manifest, Vec<ToolDefinition>, String) {
        (
            self.governance.manifest().clone(),
            tool_definitions(self.router.list_all()),
            self.policies.clone(),
        )
    }
}

/// A folder name for a checkout of the repository at `url`.
fn checkout_name(url: &str) -> String {
    url.trim_end_matches('/')
        .trim_end_matches(".git")
        .chars()
        .rev()
        .take(60)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The Knowledge server over `sources` (its folders re-indexed every `reindex_every_secs` when
/// they change).
pub(crate) fn build_knowledge(
    sources: server_knowledge::Sources,
    reindex_every_secs: u64,
    manifest: Manifest,
    rules: Rules,
) -> anyhow::Result<Built<Knowledge>> {
    let index = Arc::new(KnowledgeIndex::build(sources.load()?)?);
    tracing::info!(documents = index.len(), "indexed the knowledge corpus");
    if reindex_every_secs > 0 && (sources.docs.is_some() || sources.records.is_some()) {
        // A git source is fetched at every check, so it is always watched.
        server_knowledge::watch(
            index.clone(),
            sources,
            std::time::Duration::from_secs(reindex_every_secs),
        );
    }
    Built::new(
        manifest,
        rules,
        Knowledge::tools(),
        move |info, router, _| Knowledge::new(index.clone(), info, router),
    )
}

/// The SQL server over the chosen engine: Trino/Presto, PostgreSQL, or embedded DataFusion over
/// `args.warehouse` or the sample warehouse (generated under `data_dir` on first run).
pub(crate) async fn build_sql(
    args: &SqlArgs,
    manifest: Manifest,
    rules: Rules,
    data_dir: &std::path::Path,
) -> anyhow::Result<Built<SqlServer>> {
    let engine: Arc<dyn SqlEngine> = match args.engine.as_str() {
        "trino" | "presto" => Arc::new(server_sql::Trino::new(server_sql::TrinoConfig {
            url: args
                .trino_url
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--engine {} needs --trino-url", args.engine))?,
            dialect: if args.engine == "presto" {
                server_sql::Dialect::Presto
            } else {
                server_sql::Dialect::Trino
            },
            catalog: args.catalog.clone(),
            authorization: args.trino_authorization.clone(),
        })?),
        "postgres" => Arc::new(
            server_sql::Postgres::connect(&server_sql::PostgresConfig {
                url: args
                    .postgres_url
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("--engine postgres needs --postgres-url"))?,
                set_role: args.postgres_set_role,
            })
            .await?,
        ),
        _ => {
            let root = match &args.warehouse {
                Some(dir) => dir.clone(),
                None => {
                    let dir = data_dir.join("sql-warehouse");
                    let scale = args.sample;
                    tokio::task::spawn_blocking({
                        let dir = dir.clone();
                        move || server_sql::sample::ensure(&dir, scale)
                    })
                    .await??;
                    dir
                }
            };
            tracing::info!(warehouse = %root.display(), "serving the warehouse folder");
            Arc::new(server_sql::Embedded::open(&root, &args.catalog).await?)
        }
    };
    tracing::info!(engine = engine.name(), "opened the SQL engine");
    let limits = server_sql::Limits {
        max_rows: args.max_rows.max(1),
        max_bytes: args.max_result_bytes.max(1),
        timeout: std::time::Duration::from_secs(args.query_timeout_secs.max(1)),
    };
    Built::new(
        manifest,
        rules,
        SqlServer::tools(),
        move |info, router, governance| {
            SqlServer::new(engine.clone(), limits.clone(), info, router, governance)
        },
    )
}

/// The Spark server over the History Server, a folder of event logs, or the sample logs
/// (copied under `data_dir` on first run).
pub(crate) fn build_spark(
    args: &SparkArgs,
    manifest: Manifest,
    rules: Rules,
    data_dir: &std::path::Path,
) -> anyhow::Result<Built<Spark>> {
    let source: Arc<dyn SparkSource> = match (&args.history_server, &args.event_logs) {
        (Some(url), _) => Arc::new(server_spark::HistoryServer::new(url)?),
        (None, Some(dir)) => Arc::new(server_spark::EventLogs::new(dir)),
        (None, None) => {
            let dir = data_dir.join("spark-eventlogs");
            server_spark::samples::ensure(&dir).map_err(|e| {
                anyhow::anyhow!("write the sample event logs to {}: {e}", dir.display())
            })?;
            Arc::new(server_spark::EventLogs::new(&dir))
        }
    };
    tracing::info!(source = source.name(), "opened the Spark source");
    let rca_dir = args.rca_dir.clone();
    Built::new(manifest, rules, Spark::tools(), move |info, router, _| {
        Spark::new(source.clone(), info, router).with_records(rca_dir.clone())
    })
}

/// The Airflow server over the configured deployment, or, without one, the server that says
/// how to connect one (no imitation Airflow).
/// The tool definitions of a declarative server's tools file.
pub(crate) fn declarative_definitions(
    path: &std::path::Path,
) -> anyhow::Result<Vec<ToolDefinition>> {
    let spec = load_tools_file(path)?;
    Ok(tool_definitions(server_http::definitions(&spec)))
}

/// A declarative server's tools file, with the OpenAPI document it names read from beside it.
pub(crate) fn load_tools_file(path: &std::path::Path) -> anyhow::Result<server_http::Spec> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("read the tools file {}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    server_http::Spec::parse_with(&text, |name| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| format!("read {name}: {e}"))
    })
    .map_err(|problems| {
        anyhow::anyhow!(
            "the tools file {} is invalid:\n  {}",
            path.display(),
            problems.join("\n  ")
        )
    })
}

/// A declarative server over the tools file at `tools`.
pub(crate) fn build_http(
    tools: &std::path::Path,
    base_url: Option<String>,
    manifest: Manifest,
    rules: Rules,
) -> anyhow::Result<Built<server_http::HttpServer>> {
    let spec = load_tools_file(tools)?;
    let api = Arc::new(server_http::Api::new(spec, base_url)?);
    Built::new(
        manifest,
        rules,
        server_http::HttpServer::tools(&api),
        move |info, router, _| server_http::HttpServer::new(api.clone(), info, router),
    )
}

pub(crate) fn build_airflow(
    args: &AirflowArgs,
    manifest: Manifest,
    rules: Rules,
) -> anyhow::Result<Built<server_airflow::Airflow>> {
    let client = args.client()?;
    match &client {
        Some(c) => tracing::info!(airflow = c.base_url(), "connected to Airflow"),
        None => {
            tracing::info!("no Airflow configured: the Airflow server answers how to connect one")
        }
    }
    let ready = server_airflow::readiness(client.clone());
    Ok(Built::new(
        manifest,
        rules,
        server_airflow::Airflow::tools(),
        move |info, router, _| server_airflow::Airflow::new(client.clone(), info, router),
    )?
    .with_readiness(ready))
}

pub(crate) fn load_manifest(
    path: Option<&std::path::Path>,
    bundled: &str,
) -> anyhow::Result<Manifest> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("read manifest {}: {e}", p.display()))?,
        None => bundled.to_owned(),
    };
    Manifest::parse(&text).map_err(problems)
}

fn problems(problems: Vec<catalog::Problem>) -> anyhow::Error {
    let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
    anyhow::anyhow!("the manifest has problems:\n{}", list.join("\n"))
}

/// Converts rmcp tool definitions to the registry's wire shape (they share the MCP JSON form).
pub(crate) fn tool_definitions(tools: Vec<rmcp::model::Tool>) -> Vec<ToolDefinition> {
    tools
        .into_iter()
        .filter_map(|t| {
            let value = serde_json::to_value(&t).ok()?;
            serde_json::from_value(value).ok()
        })
        .collect()
}

fn identity_mode(common: &Common, server_name: &str) -> anyhow::Result<IdentityMode> {
    let verifier = match &common.gateway_jwks {
        Some(url) => {
            let issuer = match &common.gateway_issuer {
                Some(i) => i.clone(),
                None => url.split("/.well-known").next().unwrap_or(url).to_owned(),
            };
            Some(Verifier::new(
                server_name,
                vec![TrustedIssuer::new(issuer, KeySource::Url(url.clone()))],
            )?)
        }
        None => None,
    };
    match (verifier, common.allow_anonymous) {
        (v, true) => Ok(IdentityMode::Open(v)),
        (Some(v), false) => Ok(IdentityMode::Gateway(v)),
        (None, false) => anyhow::bail!(
            "say which gateway to trust (--gateway-jwks URL) or pass --allow-anonymous"
        ),
    }
}

async fn serve(
    common: &Common,
    router: axum::Router,
    (manifest, tools, policies): (Manifest, Vec<ToolDefinition>, String),
) -> anyhow::Result<()> {
    let listener = service_kit::bind(common.listen).await?;
    let addr = listener.local_addr()?;
    let name = manifest.server.name.clone();
    let endpoint = common
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/mcp"));
    let shutdown = service_kit::shutdown_on_signal();
    let serving = tokio::spawn(service_kit::serve(listener, router, shutdown.clone()));
    if let Some(registry_url) = &common.register_with {
        let credentials = if common.dev_issuer {
            dev_service_credentials(dev::load_key(&common.data.data_dir)?, &manifest.server.name)
        } else {
            Credentials::Static(common.registry_token.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "--registry-token (or --dev-issuer) is needed to register with {registry_url}"
                )
            })?)
        };
        let client = RegistryClient::new(registry_url, credentials);
        let registration = RegisterServer {
            manifest,
            endpoint: endpoint.clone(),
            environment: common.environment.clone(),
            tools,
            policies,
        };
        client.register(&registration).await?;
        tracing::info!(%registry_url, %endpoint, "registered with the registry");
    }
    write_ready(
        common.ready_file.as_deref(),
        serde_json::json!({ "url": format!("http://{addr}"), "endpoint": endpoint, "name": name }),
    )?;
    tracing::info!(%endpoint, "serving MCP");
    serving.await?
}
