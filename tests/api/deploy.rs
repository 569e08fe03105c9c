//! The deployment files say what the binary does: Kubernetes manifests, the compose file and
//! the Dockerfile use only the binary's own settings, its port and its probes; the Grafana
//! dashboard and the alert rules name only metrics a live `/metrics` has.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;
use serde_yaml::Value as Yaml;

use crate::helpers::{Options, is_type, north, redis_url, spawn_app_with};

/// Environment variables `dabba serve` reads: its flags' (from `--help`) and the logger's.
fn known_env() -> BTreeSet<String> {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_dabba"))
        .args(["serve", "--help"])
        .output()
        .expect("dabba serve --help");
    let text = String::from_utf8_lossy(&help.stdout);
    let mut names: BTreeSet<String> = text
        .split("[env: ")
        .skip(1)
        .filter_map(|s| s.split(['=', ']']).next())
        .map(str::to_owned)
        .collect();
    assert!(
        names.contains("DABBA_BIND") && names.contains("DATABASE_URL"),
        "{text}"
    );
    names.extend(["RUST_LOG".to_owned(), "DABBA_LOG_FORMAT".to_owned()]);
    names
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn yaml(path: &str) -> Yaml {
    serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn keys(map: &Yaml) -> Vec<String> {
    map.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kubernetes_manifests_use_the_binarys_settings_port_and_probes() {
    let known = known_env();
    let config = yaml("deploy/k8s/configmap.yaml");
    let secret = yaml("deploy/k8s/secret.yaml");
    let deployment = yaml("deploy/k8s/deployment.yaml");
    let service = yaml("deploy/k8s/service.yaml");
    let hpa = yaml("deploy/k8s/hpa.yaml");
    for (name, doc, field) in [
        ("configmap", &config, "data"),
        ("secret", &secret, "stringData"),
    ] {
        for key in keys(&doc[field]) {
            assert!(
                known.contains(&key),
                "{name} sets {key}, which dabba does not read"
            );
        }
    }
    assert!(keys(&secret["stringData"]).contains(&"DABBA_JWT_SECRET".to_owned()));
    let bind = config["data"]["DABBA_BIND"].as_str().expect("DABBA_BIND");
    let port: u64 = bind.rsplit(':').next().unwrap().parse().unwrap();

    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Yaml::Bool(true));
    let container = &pod["containers"][0];
    let ports = container["ports"].as_sequence().expect("ports");
    let named = |p: &Yaml| -> u64 {
        match p {
            Yaml::Number(n) => n.as_u64().unwrap(),
            Yaml::String(s) => ports
                .iter()
                .find(|x| x["name"].as_str() == Some(s))
                .and_then(|x| x["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("no port named {s}")),
            other => panic!("port {other:?}"),
        }
    };
    assert_eq!(
        ports[0]["containerPort"].as_u64(),
        Some(port),
        "the container listens where DABBA_BIND says"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(named(&get["port"]), port, "{probe} port");
    }
    for env in container["env"].as_sequence().into_iter().flatten() {
        let name = env["name"].as_str().unwrap();
        assert!(
            known.contains(name),
            "the deployment sets {name}, which dabba does not read"
        );
    }
    let refs: Vec<&str> = container["envFrom"]
        .as_sequence()
        .expect("envFrom")
        .iter()
        .filter_map(|e| {
            e["configMapRef"]["name"]
                .as_str()
                .or(e["secretRef"]["name"].as_str())
        })
        .collect();
    assert!(refs.contains(&config["metadata"]["name"].as_str().unwrap()));
    assert!(refs.contains(&secret["metadata"]["name"].as_str().unwrap()));
    let requests = &container["resources"]["requests"];
    assert!(
        requests["cpu"].is_string() && requests["memory"].is_string(),
        "resource requests"
    );

    let selector = &service["spec"]["selector"];
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for key in keys(selector) {
        assert_eq!(
            selector[key.as_str()],
            labels[key.as_str()],
            "the service selects the pods"
        );
    }
    assert_eq!(named(&service["spec"]["ports"][0]["targetPort"]), port);

    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["kind"].as_str(),
        Some("Deployment")
    );
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["name"].as_str(),
        Some("cpu")
    );
    let kustomization = yaml("deploy/k8s/kustomization.yaml");
    let listed: Vec<&str> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    for file in [
        "configmap.yaml",
        "secret.yaml",
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
    ] {
        assert!(listed.contains(&file), "kustomization lists {file}");
    }
}

#[test]
fn compose_and_dockerfile_run_the_binary_as_it_expects() {
    let known = known_env();
    let compose = yaml("deploy/compose.yaml");
    let services = keys(&compose["services"]);
    for s in ["dabba", "postgres", "redis", "prometheus", "grafana"] {
        assert!(services.contains(&s.to_owned()), "compose runs {s}");
    }
    let dabba = &compose["services"]["dabba"];
    for key in keys(&dabba["environment"]) {
        assert!(
            known.contains(&key),
            "compose sets {key}, which dabba does not read"
        );
    }
    assert!(
        dabba["environment"]["DATABASE_URL"]
            .as_str()
            .unwrap()
            .starts_with("postgres://")
    );
    let docker = read("Dockerfile");
    let lines: Vec<&str> = docker.lines().map(str::trim).collect();
    assert!(
        lines.iter().filter(|l| l.starts_with("FROM ")).count() >= 2,
        "multi-stage"
    );
    let user = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER");
    assert!(!user.contains("root") && !user.ends_with(" 0"), "{user}");
    assert!(lines.contains(&"EXPOSE 8080"));
    assert!(docker.contains("DABBA_BIND=0.0.0.0:8080"));
}

/// Every `dabba_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for part in text.split("dabba_").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.insert(format!("dabba_{name}"));
        }
    }
    names
}

#[actix_web::test]
async fn the_dashboard_and_alerts_name_only_metrics_a_live_server_exports() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/dabba.json")).unwrap();
    let mut exprs = String::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push_str(target["expr"].as_str().expect("expr"));
            exprs.push('\n');
        }
    }
    let alerts = yaml("deploy/prometheus/alerts.yml");
    for rule in alerts["groups"][0]["rules"].as_sequence().expect("rules") {
        exprs.push_str(rule["expr"].as_str().expect("expr"));
        exprs.push('\n');
    }
    let named = metric_names(&exprs);
    assert!(named.len() > 15, "{named:?}");

    // A server with Redis (the stream metrics), through a whole order.
    let app = spawn_app_with(Options {
        redis_url: Some(redis_url()),
        ..Options::default()
    })
    .await;
    let restaurant = app.restaurant().await;
    let (_, c) = app.customer().await;
    let (rider, rt) = app.available_rider_at(north(100.0)).await;
    let mut ws = app.ws(&rt).await;
    let order = app.place(&c, &restaurant.0).await;
    app.accept(&restaurant, &order).await;
    ws.until(is_type("offer")).await;
    let accepted = app
        .post(
            &format!("/v1/riders/{rider}/offers/{order}/accept"),
            &rt,
            json!({}),
        )
        .await;
    assert_eq!(accepted.status, 200);
    for step in ["pickup", "deliver"] {
        assert_eq!(
            app.post(&format!("/v1/orders/{order}/{step}"), &rt, json!({}))
                .await
                .status,
            200
        );
    }
    let mut exported = BTreeSet::new();
    for _ in 0..50 {
        let text = app
            .get("/metrics", &app.ops)
            .await
            .body
            .as_str()
            .unwrap_or_default()
            .to_owned();
        exported = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_owned)
            .collect();
        if named.iter().all(|n| exported.contains(n)) {
            return;
        }
        // Stream and consumer gauges are sampled in the background: give them a moment.
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let missing: Vec<_> = named.iter().filter(|n| !exported.contains(*n)).collect();
    panic!("named by the dashboard or alerts but not exported: {missing:?}");
}
