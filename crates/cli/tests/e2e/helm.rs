//! The Helm chart (`deploy/helm/switchboard`): `helm lint`, then `helm template` with production
//! settings, its output validated strictly against the Kubernetes schemas and read back to check
//! that the settings reached the right workloads.

use std::{path::PathBuf, process::Command};

use serde_json::Value;

use crate::harness::{available, python_with};

fn run(program: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_chart_renders_valid_objects_that_carry_its_settings() {
    let python = python_with("import kubernetes_validate, yaml");
    let helm = python
        .as_ref()
        .and_then(|p| p.parent().map(|d| d.join("helm")))
        .filter(|h| h.exists());
    if !available(
        "helm and kubernetes-validate (Python packages)",
        helm.is_some(),
    ) {
        return;
    }
    let (python, helm) = (python.unwrap(), helm.unwrap());
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/helm/switchboard");
    let chart = chart.to_str().unwrap();
    run(&helm, &["lint", "--strict", chart]);
    let rendered = run(
        &helm,
        &[
            "template",
            "sb",
            chart,
            "--set",
            "publicUrl=https://mcp.acme.example",
            "--set",
            "oidc.issuer=https://login.acme.example",
            "--set",
            "oidc.jwksUrl=https://login.acme.example/keys",
            "--set",
            "gateway.autoscaling.enabled=false",
            "--set",
            "gateway.replicas=5",
            "--set",
            "otlp.endpoint=http://otel-collector:4318",
            "--set",
            "servers.spark.enabled=true",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, &rendered).unwrap();
    for version in ["1.31.0", "1.34.0"] {
        let out = Command::new(&python)
            .args(["-m", "kubernetes_validate", "--strict", "-k", version])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "Kubernetes {version}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let json = run(
        &python,
        &[
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
            file.to_str().unwrap(),
        ],
    );
    let objects: Vec<Value> = serde_json::from_str(&json).unwrap();
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let args = |o: &Value| -> Vec<String> {
        o["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    };
    let gateway = find("Deployment", "sb-gateway");
    assert_eq!(gateway["spec"]["replicas"], 5);
    let gateway_args = args(gateway);
    for expected in [
        "--issuer=https://mcp.acme.example",
        "--trust-issuer=https://login.acme.example=https://login.acme.example/keys",
        "--registry-url=http://sb-registry:7700",
        "--allowed-host=mcp.acme.example",
    ] {
        assert!(
            gateway_args.iter().any(|a| a == expected),
            "{expected}: {gateway_args:?}"
        );
    }
    // Every workload exports traces; the registry reads its database URL from the Secret.
    for deployment in objects.iter().filter(|o| o["kind"] == "Deployment") {
        let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT"),
            "{}",
            deployment["metadata"]["name"]
        );
    }
    let registry = find("Deployment", "sb-registry");
    let env = &registry["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(env["name"], "SWITCHBOARD_REGISTRY_DATABASE");
    assert_eq!(
        env["valueFrom"]["secretKeyRef"]["name"],
        "switchboard-database"
    );
    // The enabled servers, each reachable only from the gateway; no autoscaler when turned off.
    for server in ["knowledge", "sql", "spark"] {
        let policy = find("NetworkPolicy", &format!("sb-{server}-gateway-only"));
        assert_eq!(
            policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
            "switchboard-gateway"
        );
        let server_args = args(find("Deployment", &format!("sb-{server}")));
        assert!(server_args.contains(&"--gateway-issuer=https://mcp.acme.example".to_owned()));
    }
    assert!(
        !objects
            .iter()
            .any(|o| o["metadata"]["name"] == "sb-airflow")
    );
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "HorizontalPodAutoscaler")
    );
}
