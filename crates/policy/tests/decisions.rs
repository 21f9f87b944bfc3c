//! Decisions end to end through the engine: business-group gating, named tool policies, argument
//! conditions, bot channels, surfaces × environments, service identities, explanations, and
//! validation that reports every problem.

use policy::{
    Action, Approval, Engine, NamedPolicy, Principal, Request, SERVICES_READ_ONLY, ServerFacts,
    ToolFacts, compile_server, validate_platform,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const PRESTO_POLICIES: &str = r#"
@id("finance-tables")
forbid(principal, action == Mcp::Action::"call", resource == Mcp::Tool::"presto/query")
when { context has args && context.args has table && context.args.table like "finance.*" }
unless { principal in Mcp::Group::"finance" };

@id("bot-channel")
forbid(principal, action, resource)
when { context.surface == "bot" && !(context has channel && context.channel == "presto-help") };
"#;

const PLATFORM: &str = r#"
@id("no-dev-from-chat")
forbid(principal, action, resource)
when { context.surface == "web-chat" && resource.environment == "dev" };
"#;

fn tool(name: &str, read_only: bool, policy: Option<(&str, &[&str])>, schema: Value) -> ToolFacts {
    ToolFacts {
        name: name.into(),
        read_only,
        sensitivity: "low".into(),
        policy: policy.map(|(n, g)| NamedPolicy {
            name: n.into(),
            groups: g.iter().map(|s| s.to_string()).collect(),
        }),
        input_schema: Some(schema),
        approved: true,
        approval: None,
    }
}

fn presto() -> ServerFacts {
    ServerFacts {
        name: "presto".into(),
        environment: "prod".into(),
        owner_team: "data".into(),
        allowed_groups: vec!["finance".into(), "ads-eng".into()],
        tools: vec![
            tool(
                "revenue",
                true,
                Some(("revenue-readers", &["ads-eng"])),
                json!({"type": "object"}),
            ),
            tool("tables", true, None, json!({"type": "object"})),
            tool(
                "query",
                false,
                None,
                json!({"type": "object", "properties": {"table": {"type": "string"}, "limit": {"type": "integer"}}}),
            ),
        ],
        policies: PRESTO_POLICIES.into(),
        approval: Approval::approved(),
    }
}

fn scratch() -> ServerFacts {
    ServerFacts {
        name: "scratch".into(),
        environment: "dev".into(),
        owner_team: "me".into(),
        allowed_groups: vec![],
        tools: vec![tool("echo", true, None, json!({"type": "object"}))],
        policies: String::new(),
        approval: Approval::approved(),
    }
}

fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(build_engine)
}

fn build_engine() -> Engine {
    let mut platform = validate_platform(SERVICES_READ_ONLY).unwrap();
    platform.extend(validate_platform(PLATFORM).unwrap());
    let mut engine = Engine::new(platform);
    for facts in [presto(), scratch()] {
        let policies = compile_server(&facts).unwrap_or_else(|p| panic!("{p:?}"));
        engine.set_server(facts, policies).unwrap();
    }
    engine
}

fn user(groups: &[&str]) -> Principal {
    Principal::User {
        id: "someone".into(),
        groups: groups.iter().map(|s| s.to_string()).collect(),
    }
}

/// `allow by [...]` or `deny by [...]: reason`, for compact expectations.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per request field keeps each expectation on one line"
)]
fn check(
    engine: &Engine,
    principal: &Principal,
    action: Action,
    target: &str,
    surface: &str,
    channel: Option<&str>,
    args: Option<Value>,
    expected: &str,
) {
    let (server, tool) = match target.split_once('/') {
        Some((s, t)) => (s, Some(t)),
        None => (target, None),
    };
    let request = Request {
        principal,
        action,
        server,
        tool,
        surface,
        channel,
        args: args.as_ref(),
    };
    let verdict = match action {
        Action::Call => engine.callable(&request),
        _ => engine.decide(&request),
    };
    let got = if verdict.allowed {
        format!("allow by {:?}", verdict.policies)
    } else {
        format!("deny by {:?}: {}", verdict.policies, verdict.reason)
    };
    assert_eq!(
        got, expected,
        "{principal:?} {action:?} {target} from {surface}"
    );
    assert!(verdict.errors.is_empty(), "{:?}", verdict.errors);
}

#[test]
fn group_gating_and_named_policies() {
    let e = engine();
    check(
        e,
        &user(&["ads-eng"]),
        Action::Call,
        "presto/revenue",
        "web-chat",
        None,
        None,
        r#"allow by ["presto/revenue-readers"]"#,
    );
    check(
        e,
        &user(&["finance"]),
        Action::Call,
        "presto/revenue",
        "web-chat",
        None,
        None,
        r#"deny by ["presto/revenue-readers"]: policy revenue-readers on tool revenue requires one of groups [ads-eng]"#,
    );
    check(
        e,
        &user(&["eng"]),
        Action::Connect,
        "presto",
        "ide",
        None,
        None,
        r#"deny by ["presto/server-access"]: server presto is restricted to groups [finance, ads-eng] and someone is in none of them"#,
    );
    check(
        e,
        &user(&["finance"]),
        Action::Connect,
        "presto",
        "ide",
        None,
        None,
        r#"allow by ["presto/connect"]"#,
    );
}

#[test]
fn argument_conditions_restrict_calls_but_not_lists() {
    let e = engine();
    let finance_table = Some(json!({"table": "finance.revenue_q3", "limit": 10}));
    check(
        e,
        &user(&["ads-eng"]),
        Action::Call,
        "presto/query",
        "ide",
        None,
        finance_table.clone(),
        r#"deny by ["presto/finance-tables"]: call on tool query is forbidden by presto/finance-tables"#,
    );
    check(
        e,
        &user(&["ads-eng"]),
        Action::Call,
        "presto/query",
        "ide",
        None,
        Some(json!({"table": "ads.clicks"})),
        r#"allow by ["presto/open-tools"]"#,
    );
    check(
        e,
        &user(&["finance"]),
        Action::Call,
        "presto/query",
        "ide",
        None,
        finance_table,
        r#"allow by ["presto/open-tools"]"#,
    );
    check(
        e,
        &user(&["ads-eng"]),
        Action::List,
        "presto/query",
        "ide",
        None,
        None,
        r#"allow by ["presto/open-tools"]"#,
    );
}

#[test]
fn surfaces_channels_environments_and_services() {
    let e = engine();
    let analyst = user(&["finance"]);
    check(
        e,
        &analyst,
        Action::Call,
        "presto/tables",
        "bot",
        Some("random"),
        None,
        r#"deny by ["presto/bot-channel"]: list on tool tables is forbidden by presto/bot-channel"#,
    );
    check(
        e,
        &analyst,
        Action::Call,
        "presto/tables",
        "bot",
        Some("presto-help"),
        None,
        r#"allow by ["presto/open-tools"]"#,
    );
    check(
        e,
        &analyst,
        Action::Call,
        "scratch/echo",
        "web-chat",
        None,
        None,
        r#"deny by ["platform/no-dev-from-chat"]: list on tool echo is forbidden by platform/no-dev-from-chat"#,
    );
    check(
        e,
        &analyst,
        Action::Call,
        "scratch/echo",
        "ide",
        None,
        None,
        r#"allow by ["scratch/open-tools"]"#,
    );
    let service = Principal::Service {
        id: "spiffe://corp/ns/etl/sa/reporter".into(),
        groups: vec!["finance".into()],
    };
    check(
        e,
        &service,
        Action::Call,
        "presto/tables",
        "api",
        None,
        None,
        r#"allow by ["presto/open-tools"]"#,
    );
    check(
        e,
        &service,
        Action::Call,
        "presto/query",
        "api",
        None,
        Some(json!({"table": "ads.clicks"})),
        r#"deny by ["platform/services-read-only"]: call on tool query is forbidden by platform/services-read-only"#,
    );
    check(
        e,
        &analyst,
        Action::Call,
        "presto/nope",
        "ide",
        None,
        None,
        r#"deny by []: tool nope is not registered for server presto"#,
    );
}

#[test]
fn who_can_lists_the_groups_that_may_call() {
    let e = engine();
    let who = |server: &str, tool: &str, surface: &str| {
        let w = e.who_can(server, tool, surface, None);
        (w.any_user, w.groups)
    };
    assert_eq!(
        who("presto", "revenue", "ide"),
        (false, vec!["ads-eng".to_owned()])
    );
    assert_eq!(
        who("presto", "tables", "ide"),
        (false, vec!["ads-eng".to_owned(), "finance".to_owned()])
    );
    assert_eq!(who("scratch", "echo", "ide"), (true, vec![]));
    assert_eq!(who("scratch", "echo", "web-chat"), (false, vec![]));
}

#[test]
fn validation_reports_every_problem_with_its_policy() {
    let mut facts = presto();
    facts.policies = r#"
        @id("typo") forbid(principal, action, resource) when { context.surfce == "bot" };
        @id("unknown-arg") forbid(principal, action == Mcp::Action::"call", resource) when { context has args && context.args.nope == 1 };
        @id("generous") permit(principal, action == Mcp::Action::"call", resource) when { context has args && context.args.limit < 5 };
    "#
    .into();
    let problems: Vec<String> = compile_server(&facts)
        .unwrap_err()
        .iter()
        .map(|p| p.policy.clone())
        .collect();
    assert_eq!(
        problems,
        [
            "presto/generous",
            "presto/typo",
            "presto/unknown-arg",
            "presto/generous"
        ],
        "every problem at once"
    );
    facts.policies = facts.policies.replace("permit", "forbid");
    let problems = compile_server(&facts).unwrap_err();
    let ids: Vec<&str> = problems.iter().map(|p| p.policy.as_str()).collect();
    // `limit` is optional, so testing it needs `context.args has limit` first.
    assert_eq!(
        ids,
        ["presto/typo", "presto/unknown-arg", "presto/generous"],
        "{problems:#?}"
    );
    assert_eq!(
        problems[0].message,
        "for policy `presto/typo`, attribute `surfce` in context not found"
    );
    facts.policies = "permit(principal, action, resource".into();
    assert!(
        compile_server(&facts).unwrap_err()[0]
            .message
            .contains("unexpected end of input")
    );
    assert!(
        validate_platform("forbid(principal, action, resource) when { resource.nope };").is_err()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `tools/list` shows exactly the tools a caller could call with some arguments.
    #[test]
    fn listing_and_calling_agree(
        groups in proptest::sample::subsequence(vec!["finance", "ads-eng", "eng"], 0..=3),
        tool in proptest::sample::select(vec!["revenue", "tables", "query"]),
        surface in proptest::sample::select(vec!["web-chat", "bot", "ide"]),
        channel in proptest::option::of(proptest::sample::select(vec!["presto-help", "random"])),
        table in proptest::sample::select(vec!["finance.q3", "ads.clicks", "other"]),
    ) {
        let e = engine();
        let principal = user(&groups);
        let request = Request { principal: &principal, action: Action::Call, server: "presto", tool: Some(tool), surface, channel, args: None };
        let listed = e.visible(&request).allowed;
        let samples = [None, Some(json!({"table": table})), Some(json!({"limit": 3}))];
        let callable_somehow = samples.iter().any(|args| e.callable(&Request { args: args.as_ref(), ..request }).allowed);
        prop_assert_eq!(listed, callable_somehow);
    }
}

/// A server whose `drop_table` needs its owner team's approval, and whose own rule asks the DBAs
/// for any call that touches a production table.
fn warehouse() -> ServerFacts {
    let schema = json!({"type": "object", "properties": {"table": {"type": "string"}}});
    let mut drop = tool("drop_table", false, None, schema.clone());
    drop.approval = Some("owners".into());
    let mut confirm = tool("truncate", false, None, schema.clone());
    confirm.approval = Some("self".into());
    ServerFacts {
        name: "warehouse".into(),
        environment: "prod".into(),
        owner_team: "data".into(),
        allowed_groups: vec![],
        tools: vec![drop, confirm, tool("describe", true, None, schema)],
        policies: r#"
            @id("prod-tables") @approval("group:dba")
            permit(principal, action == Mcp::Action::"call", resource in Mcp::Server::"warehouse")
            when { context has args && context.args has table && context.args.table like "prod.*" };
        "#
        .into(),
        approval: Approval::approved(),
    }
}

#[test]
fn approval_rules_say_which_calls_wait_for_whom() {
    let mut engine = Engine::new(validate_platform(SERVICES_READ_ONLY).unwrap());
    let facts = warehouse();
    let policies = compile_server(&facts).unwrap_or_else(|p| panic!("{p:?}"));
    engine.set_server(facts, policies).unwrap();
    let who = user(&["eng"]);
    let ask = |tool: &str, args: Value| {
        let request = Request {
            principal: &who,
            action: Action::Call,
            server: "warehouse",
            tool: Some(tool),
            surface: "ide",
            channel: None,
            args: Some(&args),
        };
        // Approval rules grant nothing and take nothing away: every call here is allowed.
        assert!(engine.callable(&request).allowed, "{tool}");
        engine
            .approval(&request)
            .map(|need| (need.approver, need.policies))
    };
    assert_eq!(ask("describe", json!({"table": "scratch.t"})), None);
    assert_eq!(
        ask("drop_table", json!({"table": "scratch.t"})),
        Some((
            "owners".into(),
            vec!["warehouse/approval:drop_table".into()]
        ))
    );
    assert_eq!(
        ask("truncate", json!({"table": "scratch.t"})).unwrap().0,
        "self"
    );
    // A production table asks the strictest approver: the named group.
    assert_eq!(
        ask("drop_table", json!({"table": "prod.orders"})),
        Some((
            "group:dba".into(),
            vec![
                "warehouse/prod-tables".into(),
                "warehouse/approval:drop_table".into()
            ]
        ))
    );
    assert_eq!(
        ask("describe", json!({"table": "prod.orders"})).unwrap().0,
        "group:dba"
    );
}

#[test]
fn approval_rules_must_be_permits_naming_an_approver() {
    let mut facts = warehouse();
    facts.policies = r#"
        @id("backwards") @approval("owners")
        forbid(principal, action == Mcp::Action::"call", resource);
        @id("nobody") @approval("the boss")
        permit(principal, action == Mcp::Action::"call", resource);
    "#
    .into();
    let problems: Vec<String> = compile_server(&facts)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        [
            "warehouse/backwards: an @approval rule is written as a permit: it says which calls need approval",
            "warehouse/nobody: @approval(\"the boss\") names no approver: use self, owners or group:<name>",
        ]
    );
}

/// Verdicts are remembered per caller and tool, and across arguments only where no policy that
/// can apply reads them: however a policy reaches the arguments, two calls that differ only in
/// them are decided apart, and asked again in any order they are decided as before.
#[test]
fn remembered_verdicts_never_cross_arguments_a_policy_reads() {
    let readers = [
        r#"forbid(principal, action, resource) when { context has args && context.args has table && context.args.table == "secret" };"#,
        r#"forbid(principal, action, resource) when { context has args && context["args"] has table && context["args"]["table"] == "secret" };"#,
        r#"forbid(principal, action == Mcp::Action::"call", resource == Mcp::Tool::"scratch/echo") when { context has args && context.args has table && context.args.table == "secret" };"#,
    ];
    for text in readers {
        let mut facts = scratch();
        facts.tools[0].input_schema =
            Some(json!({"type": "object", "properties": {"table": {"type": "string"}}}));
        facts.policies = text.into();
        let policies = compile_server(&facts).unwrap_or_else(|p| panic!("{text}: {p:?}"));
        let mut engine = Engine::new(Vec::new());
        engine.set_server(facts, policies).unwrap();
        let someone = user(&[]);
        let ask = |table: &str| {
            let args = json!({ "table": table });
            engine
                .callable(&Request {
                    principal: &someone,
                    action: Action::Call,
                    server: "scratch",
                    tool: Some("echo"),
                    surface: "ide",
                    channel: None,
                    args: Some(&args),
                })
                .allowed
        };
        for _ in 0..2 {
            assert!(!ask("secret"), "{text}");
            assert!(ask("public"), "{text}");
        }
    }
}

/// A policy that reads no arguments leaves every call decided as a fresh engine decides it,
/// whatever was asked before: callers, surfaces, channels and tools are all in the remembered
/// verdict's key.
#[test]
fn remembered_verdicts_answer_as_a_fresh_engine_does() {
    let shared = build_engine();
    let principals = [
        user(&["ads-eng"]),
        user(&["finance"]),
        user(&[]),
        Principal::Service {
            id: "spiffe://corp/ns/etl/sa/loader".into(),
            groups: vec![],
        },
    ];
    let targets = ["presto/revenue", "presto/tables", "scratch/echo"];
    let surfaces = [
        ("ide", None),
        ("bot", Some("presto-help")),
        ("bot", None),
        ("web-chat", None),
    ];
    for round in 0..2 {
        for principal in &principals {
            for target in targets {
                for (surface, channel) in surfaces {
                    let (server, tool) = target.split_once('/').unwrap();
                    let args = json!({"limit": round});
                    let request = Request {
                        principal,
                        action: Action::Call,
                        server,
                        tool: Some(tool),
                        surface,
                        channel,
                        args: Some(&args),
                    };
                    assert_eq!(
                        shared.callable(&request),
                        build_engine().callable(&request),
                        "{principal:?} {target} {surface} {channel:?}"
                    );
                }
            }
        }
    }
}
