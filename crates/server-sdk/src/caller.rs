//! Who is calling a tool. Over HTTP the identity middleware puts a verified [`Caller`] into the
//! request's extensions; over stdio the process's local identity applies.

use rmcp::{RoleServer, service::RequestContext};

/// The verified identity behind one tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub groups: Vec<String>,
    /// The surface the call came from (web chat, bot, IDE, ...), when the gateway says so.
    pub surface: Option<String>,
    /// The chat channel of a bot's call, when the gateway says so.
    pub channel: Option<String>,
    /// The approved proposal this call runs, when the gateway runs one: a person approved this
    /// very call (see [`crate::confirm`]).
    pub confirmation: Option<String>,
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller {
            user: "anonymous".into(),
            groups: Vec::new(),
            surface: None,
            channel: None,
            confirmation: None,
        }
    }

    /// The identity of a local (stdio) session: `SWITCHBOARD_USER` and `SWITCHBOARD_GROUPS`
    /// (comma-separated), falling back to the OS user.
    pub fn local() -> Caller {
        let user = std::env::var("SWITCHBOARD_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "local".into());
        let groups = std::env::var("SWITCHBOARD_GROUPS")
            .map(|g| catalog::parse_groups(&g))
            .unwrap_or_default();
        Caller {
            user,
            groups,
            surface: Some("local".into()),
            channel: None,
            confirmation: None,
        }
    }

    pub fn principal(&self) -> catalog::Principal {
        catalog::Principal {
            user: self.user.clone(),
            groups: self.groups.clone(),
        }
    }
}

/// The caller of the request behind `ctx`, if the transport established one.
pub fn caller_of(ctx: &RequestContext<RoleServer>) -> Option<Caller> {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
}
