//! Policy decision time with 1,000 policies loaded (100 servers × 10 policies, plus platform
//! policies), against a baseline measured in the same run: the plain group-gating rule of
//! `catalog::decide_tool`, which knows nothing of Cedar. Run with `cargo bench -p policy`.
//!
//! The engine caches each caller's request entities per server, so steady-state decisions (the
//! figure the target applies to) reuse them; a caller's first decision is reported too.

use std::time::{Duration, Instant};

use catalog::{ServerAccess, ToolAccess, decide_tool};
use policy::{
    Action, Approval, Engine, NamedPolicy, Principal, Request, SERVICES_READ_ONLY, ServerFacts,
    ToolFacts, compile_server, validate_platform,
};
use serde_json::json;

const SERVERS: usize = 100;

fn facts(i: usize) -> ServerFacts {
    let group = |k: usize| format!("group-{}", (i + k) % 50);
    let tools = (0..8)
        .map(|t| ToolFacts {
            name: format!("tool{t}"),
            read_only: t % 2 == 0,
            sensitivity: "low".into(),
            // Six named policies per server; with connect, open-tools, server-access and one
            // custom policy that is ten policies a server.
            policy: (t < 6).then(|| NamedPolicy {
                name: format!("policy{t}"),
                groups: vec![group(t), group(t + 7)],
            }),
            input_schema: Some(
                json!({"type": "object", "properties": {"table": {"type": "string"}}}),
            ),
            approved: true,
            approval: None,
        })
        .collect();
    ServerFacts {
        name: format!("server{i}"),
        environment: if i.is_multiple_of(3) {
            "dev".into()
        } else {
            "prod".into()
        },
        owner_team: "team".into(),
        allowed_groups: vec![
            group(0),
            group(1),
            group(2),
            group(3),
            group(4),
            group(5),
            group(6),
            group(7),
        ],
        tools,
        policies: format!(
            r#"@id("finance-tables") forbid(principal, action == Mcp::Action::"call", resource in Mcp::Server::"server{i}")
               when {{ context has args && context.args has table && context.args.table like "finance.*" }}
               unless {{ principal in Mcp::Group::"{}" }};"#,
            group(3)
        ),
        approval: Approval::approved(),
    }
}

fn time(label: &str, iterations: u32, mut f: impl FnMut() -> bool) -> Duration {
    // Warm up, then take the best of five runs.
    for _ in 0..iterations / 10 {
        std::hint::black_box(f());
    }
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                std::hint::black_box(f());
            }
            start.elapsed() / iterations
        })
        .min()
        .expect("five runs");
    println!("{label:<58} {:>9.2} µs/decision", best.as_secs_f64() * 1e6);
    best
}

fn main() {
    let mut platform = validate_platform(SERVICES_READ_ONLY).expect("built-in platform policy");
    platform.extend(
        validate_platform(r#"@id("no-dev-from-chat") forbid(principal, action, resource) when { context.surface == "web-chat" && resource.environment == "dev" };"#)
            .expect("platform policy"),
    );
    let mut engine = Engine::new(platform);
    for i in 0..SERVERS {
        let facts = facts(i);
        let policies = compile_server(&facts).expect("valid policies");
        engine.set_server(facts, policies).expect("loaded");
    }
    println!("policies loaded: {}", engine.policy_count());

    let principal = Principal::User {
        id: "alice".into(),
        groups: vec!["group-42".into(), "group-49".into(), "employees".into()],
    };
    let args = json!({"table": "ads.clicks", "limit": 10});
    let request = Request {
        principal: &principal,
        action: Action::Call,
        server: "server42",
        tool: Some("tool0"),
        surface: "ide",
        channel: None,
        args: Some(&args),
    };
    assert!(
        engine.decide(&request).allowed,
        "the benchmark request is an allow"
    );

    let groups = vec!["group-42".to_owned(), "group-43".to_owned()];
    let who = catalog::Principal {
        user: "alice".into(),
        groups: vec!["group-42".into(), "group-49".into()],
    };
    let baseline = time(
        "baseline: catalog::decide_tool (group rule, no Cedar)",
        200_000,
        || {
            decide_tool(
                &who,
                ServerAccess {
                    name: "server42",
                    allowed_groups: &groups,
                },
                ToolAccess {
                    name: "tool0",
                    policy: Some(("policy0", &groups)),
                },
            )
            .is_allowed()
        },
    );
    let one = time("Cedar: one decision (call with arguments)", 20_000, || {
        engine.decide(&request).allowed
    });
    let call = time(
        "Cedar: a tools/call (list + call with arguments)",
        20_000,
        || engine.callable(&request).allowed,
    );
    // A caller the engine has not seen yet pays once for building its entities.
    let mut n = 0u64;
    let cold = time(
        "Cedar: one decision for a caller not seen before",
        5_000,
        || {
            n += 1;
            let stranger = Principal::User {
                id: format!("user{n}"),
                groups: vec!["group-42".into()],
            };
            engine
                .decide(&Request {
                    principal: &stranger,
                    ..request
                })
                .allowed
        },
    );
    println!();
    println!(
        "one Cedar decision = {:.0}x the baseline; a full tools/call check = {:.0}x; a caller's first decision = {:.0}x",
        ratio(one, baseline),
        ratio(call, baseline),
        ratio(cold, baseline)
    );
    println!(
        "target: under 10 µs per decision with 1,000 policies loaded: {}",
        if one < Duration::from_micros(10) {
            "met"
        } else {
            "NOT met"
        }
    );
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
