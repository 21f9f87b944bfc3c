//! `switchboard deploy`: the paved path from a server's manifest to Kubernetes. It renders the
//! objects a server needs (its manifest as a ConfigMap, a ServiceAccount whose name gives its
//! SPIFFE ID, a Deployment with probes and a locked-down security context, a Service, a
//! HorizontalPodAutoscaler, and a NetworkPolicy that lets only the gateway in) and registers the
//! server with the registry at its Service address, which opens its reviews.

use std::path::PathBuf;

use catalog::Manifest;
use registry_api::{RegisterServer, ToolDefinition};
use serde_json::{Value, json};

use crate::commands::{RegistryAccess, server};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The server's manifest (`switchboard.toml`).
    #[arg(long)]
    manifest: PathBuf,
    /// The server's container image.
    #[arg(long)]
    image: String,
    #[arg(long, default_value = "mcp-servers")]
    namespace: String,
    /// The port the server listens on in its container (its MCP endpoint is `/mcp`).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Arguments of the container's command. Repeat for several.
    #[arg(long = "arg", allow_hyphen_values = true)]
    args: Vec<String>,
    /// `NAME=VALUE` environment variables of the container. Repeat for several.
    #[arg(long = "env")]
    env: Vec<String>,
    #[arg(long, default_value_t = 2)]
    min_replicas: u32,
    #[arg(long, default_value_t = 10)]
    max_replicas: u32,
    /// Average CPU use (percent of the request) the autoscaler keeps.
    #[arg(long, default_value_t = 70)]
    cpu_target: u32,
    /// The SPIFFE trust domain (the server's ID is `spiffe://<domain>/ns/<ns>/sa/<name>`).
    #[arg(long, default_value = "switchboard.local")]
    trust_domain: String,
    /// Where the gateway runs, and the label its pods carry: the only callers let in.
    #[arg(long, default_value = "switchboard")]
    gateway_namespace: String,
    #[arg(long, default_value = "app.kubernetes.io/name=switchboard-gateway")]
    gateway_label: String,
    /// The environment it registers in.
    #[arg(long, default_value = "prod")]
    environment: String,
    /// The server's tool definitions (a JSON array as `tools/list` gives them), registered for
    /// review before the first call; without them, each tool is reviewed when the gateway
    /// first sees it.
    #[arg(long, conflicts_with = "declarative_tools")]
    tools: Option<PathBuf>,
    /// A declarative server's tools file: its tool definitions are registered, and the
    /// container runs `switchboard server http` over it.
    #[arg(long)]
    declarative_tools: Option<PathBuf>,
    /// Write the objects here (multi-document YAML) instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Render only; register nothing.
    #[arg(long)]
    no_register: bool,
    #[command(flatten)]
    registry: RegistryAccess,
}

/// What the objects are made from, besides the manifest.
pub(crate) struct Plan {
    pub(crate) image: String,
    pub(crate) namespace: String,
    pub(crate) port: u16,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) min_replicas: u32,
    pub(crate) max_replicas: u32,
    pub(crate) cpu_target: u32,
    pub(crate) trust_domain: String,
    pub(crate) gateway_namespace: String,
    pub(crate) gateway_label: (String, String),
    /// A declarative server's tools file, mounted beside the manifest.
    pub(crate) declarative_tools: Option<String>,
    /// Files the tools file names (its OpenAPI document), mounted beside it: (name, text).
    pub(crate) beside: Vec<(String, String)>,
}

const MANIFEST_DIR: &str = "/etc/switchboard";

impl Plan {
    /// The server's address inside the cluster.
    pub(crate) fn endpoint(&self, name: &str) -> String {
        format!(
            "http://{name}.{}.svc.cluster.local:{}/mcp",
            self.namespace, self.port
        )
    }

    pub(crate) fn spiffe_id(&self, name: &str) -> String {
        format!(
            "spiffe://{}/ns/{}/sa/{name}",
            self.trust_domain, self.namespace
        )
    }
}

/// The Kubernetes objects of `manifest`'s server.
pub(crate) fn render(manifest: &Manifest, manifest_text: &str, plan: &Plan) -> Vec<Value> {
    let name = &manifest.server.name;
    let ns = &plan.namespace;
    let labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "switchboard",
        "app.kubernetes.io/managed-by": "switchboard-deploy",
        "switchboard.dev/owner-team": manifest.server.owner_team,
    });
    let selector = json!({"app.kubernetes.io/name": name});
    let annotations = json!({
        "switchboard.dev/support-channel": manifest.server.support_channel,
        "switchboard.dev/spiffe-id": plan.spiffe_id(name),
    });
    let metadata = |object: &str| json!({"name": object, "namespace": ns, "labels": labels, "annotations": annotations});
    let mut data = json!({"switchboard.toml": manifest_text});
    if let Some(tools) = &plan.declarative_tools {
        data["tools.toml"] = json!(tools);
    }
    for (name, text) in &plan.beside {
        data[name.as_str()] = json!(text);
    }
    let mut env: Vec<Value> = vec![
        json!({"name": "SWITCHBOARD_MANIFEST", "value": format!("{MANIFEST_DIR}/switchboard.toml")}),
    ];
    env.extend(plan.env.iter().map(|(k, v)| json!({"name": k, "value": v})));
    let mut args = plan.args.clone();
    if plan.declarative_tools.is_some() && args.is_empty() {
        args = [
            "server",
            "http",
            "--tools",
            &format!("{MANIFEST_DIR}/tools.toml"),
            "--listen",
            &format!("0.0.0.0:{}", plan.port),
        ]
        .map(str::to_owned)
        .to_vec();
    }
    let probe = |path: &str, delay: u32| {
        json!({
            "httpGet": {"path": path, "port": "http"},
            "initialDelaySeconds": delay,
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        })
    };
    let (gateway_key, gateway_value) = &plan.gateway_label;
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(&format!("{name}-manifest")),
            "data": data,
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(name),
            "automountServiceAccountToken": false,
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(name),
            "spec": {
                "replicas": plan.min_replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": {
                        "serviceAccountName": name,
                        "automountServiceAccountToken": false,
                        "securityContext": {
                            "runAsNonRoot": true,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [{
                            "name": "server",
                            "image": plan.image,
                            "args": args,
                            "env": env,
                            "ports": [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}],
                            "readinessProbe": probe("/readyz", 2),
                            "livenessProbe": probe("/healthz", 10),
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "manifest", "mountPath": MANIFEST_DIR, "readOnly": true}],
                        }],
                        "volumes": [{"name": "manifest", "configMap": {"name": format!("{name}-manifest")}}],
                    },
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(name),
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": plan.port, "targetPort": "http", "protocol": "TCP"}],
            },
        }),
        json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(name),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": plan.min_replicas,
                "maxReplicas": plan.max_replicas.max(plan.min_replicas),
                "metrics": [{
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": plan.cpu_target}},
                }],
            },
        }),
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata(&format!("{name}-gateway-only")),
            "spec": {
                "podSelector": {"matchLabels": selector},
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": [{
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": plan.gateway_namespace}},
                        "podSelector": {"matchLabels": {gateway_key.as_str(): gateway_value}},
                    }],
                    "ports": [{"port": plan.port, "protocol": "TCP"}],
                }],
            },
        }),
    ]
}

/// The objects as multi-document YAML (each document in JSON form, which YAML reads as is).
pub(crate) fn to_yaml(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_json::to_string_pretty(o).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n---\n")
        + "\n"
}

fn pairs(values: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| {
            v.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("{what} takes NAME=VALUE, got {v:?}"))
        })
        .collect()
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let manifest_text = std::fs::read_to_string(&args.manifest)
        .map_err(|e| anyhow::anyhow!("read {}: {e}", args.manifest.display()))?;
    let manifest = server::load_manifest(Some(&args.manifest), "")?;
    let gateway_label =
        pairs(std::slice::from_ref(&args.gateway_label), "--gateway-label")?.remove(0);
    let declarative = match &args.declarative_tools {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?,
        ),
        None => None,
    };
    // The OpenAPI document a tools file names goes into the ConfigMap beside it.
    let mut beside = Vec::new();
    if let Some(path) = &args.declarative_tools
        && let Some(name) = server::load_tools_file(path)?.openapi
    {
        anyhow::ensure!(
            !name.contains('/') && !name.contains('\\'),
            "keep the OpenAPI document {name:?} beside the tools file (a plain file name) to deploy it"
        );
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let text = std::fs::read_to_string(dir.join(&name))
            .map_err(|e| anyhow::anyhow!("read {name}: {e}"))?;
        beside.push((name, text));
    }
    let plan = Plan {
        image: args.image.clone(),
        namespace: args.namespace.clone(),
        port: args.port,
        args: args.args.clone(),
        env: pairs(&args.env, "--env")?,
        min_replicas: args.min_replicas.max(1),
        max_replicas: args.max_replicas,
        cpu_target: args.cpu_target.clamp(1, 100),
        trust_domain: args.trust_domain.clone(),
        gateway_namespace: args.gateway_namespace.clone(),
        gateway_label,
        declarative_tools: declarative.clone(),
        beside,
    };
    // The tools it will serve, when they are known before it runs.
    let tools: Vec<ToolDefinition> = match (&args.tools, &declarative) {
        (Some(path), _) => serde_json::from_str(
            &std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "{} is not a JSON array of tool definitions: {e}",
                path.display()
            )
        })?,
        (None, Some(_)) => server::declarative_definitions(
            args.declarative_tools
                .as_deref()
                .expect("the tools file was read"),
        )?,
        (None, None) => Vec::new(),
    };
    let objects = render(&manifest, &manifest_text, &plan);
    let yaml = to_yaml(&objects);
    match &args.out {
        Some(path) => std::fs::write(path, &yaml)
            .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?,
        None => print!("{yaml}"),
    }
    if args.no_register {
        return Ok(());
    }
    let name = manifest.server.name.clone();
    let endpoint = plan.endpoint(&name);
    let registered = args
        .registry
        .client()?
        .register(&RegisterServer {
            manifest,
            endpoint: endpoint.clone(),
            environment: args.environment.clone(),
            tools,
            policies: String::new(),
        })
        .await?;
    eprintln!(
        "registered {name} at {endpoint} ({} tools); its reviews are open: switchboard review list --server {name}",
        registered.tools.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            image: "registry.example.com/billing:1.2".into(),
            namespace: "mcp".into(),
            port: 8080,
            args: Vec::new(),
            env: vec![("LOG".into(), "info".into())],
            min_replicas: 2,
            max_replicas: 6,
            cpu_target: 70,
            trust_domain: "example.org".into(),
            gateway_namespace: "switchboard".into(),
            gateway_label: ("app".into(), "gateway".into()),
            declarative_tools: Some("[tools.x]\n".into()),
            beside: vec![("api.json".into(), "{}".into())],
        }
    }

    #[test]
    fn a_manifest_becomes_the_objects_a_server_needs() {
        let text = "[server]\nname = \"billing\"\ndescription = \"d\"\nowner_team = \"finance-eng\"\nsupport_channel = \"#billing\"\n";
        let manifest = Manifest::parse(text).unwrap();
        let objects = render(&manifest, text, &plan());
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "ConfigMap",
                "ServiceAccount",
                "Deployment",
                "Service",
                "HorizontalPodAutoscaler",
                "NetworkPolicy"
            ]
        );
        let deployment = &objects[2];
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["args"][1], "http");
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(
            deployment["metadata"]["annotations"]["switchboard.dev/spiffe-id"],
            "spiffe://example.org/ns/mcp/sa/billing"
        );
        let from = &objects[5]["spec"]["ingress"][0]["from"][0];
        assert_eq!(from["podSelector"]["matchLabels"]["app"], "gateway");
        assert_eq!(
            plan().endpoint("billing"),
            "http://billing.mcp.svc.cluster.local:8080/mcp"
        );
        assert!(to_yaml(&objects).contains("\n---\n"));
    }
}
