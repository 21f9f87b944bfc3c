//! Remembered `tools/list` filtering. Checking a listing costs a definition hash per tool (the
//! pins) and a policy decision per tool and caller; a server lists the same tools again and
//! again, and a caller sees the same of them until the catalog or the policies change. So the
//! gateway remembers each listing a server gave lately (by its digest) with which of its tools
//! passed the pins, and per caller which of those the caller may see. Both stand only for the
//! catalog snapshot (the server's record) and the policy engine they were computed with.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use identity::{RememberKey, Remembered};
use policy::Engine;
use serde_json::Value;
use sha2::Digest;

use crate::catalog_cache::Server;

/// Callers whose view of one listing is remembered at most.
const CALLERS_MAX: usize = 10_000;
/// How long a caller's view stands (it is also dropped with its listing).
const VIEW_FOR: Duration = Duration::from_secs(600);

/// Listings remembered at most (a server whose listing differs by caller has several).
const LISTINGS_MAX: usize = 1024;

/// The listings servers gave lately, by server and digest, and who sees what of them.
#[derive(Default)]
pub(crate) struct Listings {
    known: Mutex<HashMap<ListingKey, Arc<Listing>>>,
}

/// A server's name and the digest of what it listed.
type ListingKey = (String, [u8; 32]);

/// The catalog snapshot a listing is checked against: the server's record and the policies.
pub(crate) struct Snapshot<'a> {
    pub(crate) server: &'a Arc<Server>,
    pub(crate) engine: &'a Arc<Engine>,
}

/// One server's listing as checked against one snapshot of the catalog and the policies.
struct Listing {
    /// The record and the engine it was checked with (weak: a newer snapshot frees them).
    server: Weak<Server>,
    engine: Weak<Engine>,
    /// Per listed tool: its name, if its definition matches the registry's record.
    pinned: Vec<Option<String>>,
    /// Some tool was withheld as changed.
    drifted: bool,
    /// Per listed tool: whether a call to it can need approval.
    approval: Vec<bool>,
    /// Per caller: which listed tools they see.
    views: Remembered<Arc<Vec<bool>>>,
}

/// What the pins say of one listed tool.
pub(crate) enum PinCheck {
    /// Served, under this name.
    Served(String),
    /// Withheld, with nothing to remember (malformed, or unknown to the registry).
    Withheld,
    /// Withheld because its definition changed: the pins remember the drift (so its calls are
    /// refused) while this listing is the server's latest.
    Changed,
}

/// What a listing leaves for the caller.
pub(crate) struct Filtered {
    pub(crate) tools: Vec<Value>,
    /// Some tool the caller sees can need approval.
    pub(crate) needs_approval: bool,
}

impl Listings {
    /// `tools` as `server` listed them, filtered for one caller. `check_pins` is asked about
    /// each tool of a listing not seen with this snapshot (it records drift and reports
    /// changed definitions), and again of a known one when `drift_known` (some tool anywhere
    /// has drifted, so its marks must follow the server's latest listing). `visible` is asked
    /// about each served tool for a caller whose view of this listing is not remembered.
    pub(crate) fn filter(
        &self,
        Snapshot { server, engine }: Snapshot<'_>,
        caller: RememberKey,
        tools: Vec<Value>,
        drift_known: bool,
        mut check_pins: impl FnMut(&Value) -> PinCheck,
        mut visible: impl FnMut(&str) -> bool,
    ) -> Filtered {
        let digest = digest(&tools);
        let key = (server.name.clone(), digest);
        let known = self
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .filter(|l| {
                std::ptr::eq(l.server.as_ptr(), Arc::as_ptr(server))
                    && std::ptr::eq(l.engine.as_ptr(), Arc::as_ptr(engine))
            })
            .cloned();
        let listing = match known {
            Some(listing) => {
                if drift_known || listing.drifted {
                    // Same answers as the first time; what matters is the marks they leave.
                    tools.iter().for_each(|tool| {
                        check_pins(tool);
                    });
                }
                listing
            }
            None => {
                let mut drifted = false;
                let pinned: Vec<Option<String>> = tools
                    .iter()
                    .map(|tool| match check_pins(tool) {
                        PinCheck::Served(name) => Some(name),
                        PinCheck::Withheld => None,
                        PinCheck::Changed => {
                            drifted = true;
                            None
                        }
                    })
                    .collect();
                let approval = pinned
                    .iter()
                    .map(|name| {
                        name.as_deref()
                            .and_then(|n| server.tool(n))
                            .is_some_and(|t| t.approval.is_some())
                    })
                    .collect();
                let listing = Arc::new(Listing {
                    server: Arc::downgrade(server),
                    engine: Arc::downgrade(engine),
                    pinned,
                    drifted,
                    approval,
                    views: Remembered::new(CALLERS_MAX),
                });
                let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
                if known.len() >= LISTINGS_MAX && !known.contains_key(&key) {
                    // Listings checked against an older snapshot go first.
                    known.retain(|_, l| l.server.strong_count() > 0 && l.engine.strong_count() > 0);
                    if known.len() >= LISTINGS_MAX {
                        known.clear();
                    }
                }
                known.insert(key, listing.clone());
                listing
            }
        };
        let view = listing
            .views
            .get_or_try::<std::convert::Infallible>(caller, || {
                let view = listing
                    .pinned
                    .iter()
                    .map(|name| name.as_deref().is_some_and(&mut visible))
                    .collect();
                Ok((Arc::new(view), VIEW_FOR))
            })
            .unwrap_or_else(|never| match never {});
        let needs_approval = view
            .iter()
            .zip(&listing.approval)
            .any(|(seen, approval)| *seen && *approval);
        let tools = tools
            .into_iter()
            .zip(view.iter())
            .filter_map(|(tool, seen)| seen.then_some(tool))
            .collect();
        Filtered {
            tools,
            needs_approval,
        }
    }

    /// How many listings are remembered (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// SHA-256 of the tools as serialized (the same listing parses and serializes alike).
fn digest(tools: &[Value]) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    // Writing into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut hasher, tools);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use serde_json::json;

    use super::*;

    fn tools() -> Vec<Value> {
        vec![
            json!({"name": "a", "inputSchema": {"type": "object"}}),
            json!({"name": "b", "inputSchema": {"type": "object"}}),
            json!({"name": "changed", "inputSchema": {"type": "object"}}),
        ]
    }

    #[test]
    fn a_listing_is_checked_once_per_snapshot_and_each_caller_decided_once() {
        let listings = Listings::default();
        let server = Arc::new(crate::pins::tests::server(&tools()));
        let engine = Arc::new(Engine::default());
        let (pins_asked, policy_asked) = (Cell::new(0), Cell::new(0));
        let run = |server: &Arc<Server>,
                   engine: &Arc<Engine>,
                   caller: &str,
                   listed: Vec<Value>,
                   drift_known: bool| {
            listings.filter(
                Snapshot { server, engine },
                Remembered::<()>::key(&[caller.as_bytes()]),
                listed,
                drift_known,
                |tool| {
                    pins_asked.set(pins_asked.get() + 1);
                    match tool["name"].as_str() {
                        Some("changed") => PinCheck::Changed,
                        Some(name) => PinCheck::Served(name.to_owned()),
                        None => PinCheck::Withheld,
                    }
                },
                |name| {
                    policy_asked.set(policy_asked.get() + 1);
                    caller == "alice" || name == "a"
                },
            )
        };
        let names = |f: Filtered| {
            f.tools
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        // First sight: every tool's pins, every served tool's policy.
        assert_eq!(
            names(run(&server, &engine, "alice", tools(), false)),
            ["a", "b"]
        );
        assert_eq!((pins_asked.get(), policy_asked.get()), (3, 2));
        // The same listing for the same caller: nothing asked again. The listing had a changed
        // tool, so its marks are renewed (the pins are asked again), but not the policies.
        assert_eq!(
            names(run(&server, &engine, "alice", tools(), false)),
            ["a", "b"]
        );
        assert_eq!((pins_asked.get(), policy_asked.get()), (6, 2));
        // Another caller: only their policies.
        assert_eq!(names(run(&server, &engine, "bob", tools(), false)), ["a"]);
        assert_eq!((pins_asked.get(), policy_asked.get()), (9, 4));
        // A clean listing seen before, with no drift anywhere: nothing asked at all.
        let clean: Vec<Value> = tools().into_iter().take(2).collect();
        run(&server, &engine, "bob", clean.clone(), false);
        assert_eq!((pins_asked.get(), policy_asked.get()), (11, 6));
        assert_eq!(
            names(run(&server, &engine, "bob", clean.clone(), false)),
            ["a"]
        );
        assert_eq!((pins_asked.get(), policy_asked.get()), (11, 6));
        // ... unless some tool drifted somewhere: the pins are asked again.
        run(&server, &engine, "bob", clean.clone(), true);
        assert_eq!((pins_asked.get(), policy_asked.get()), (13, 6));
        // A new policy engine, or a new record of the server, starts over.
        let engine2 = Arc::new(Engine::default());
        run(&server, &engine2, "bob", clean.clone(), false);
        assert_eq!((pins_asked.get(), policy_asked.get()), (15, 8));
        let server2 = Arc::new(crate::pins::tests::server(&tools()));
        run(&server2, &engine2, "bob", clean, false);
        assert_eq!((pins_asked.get(), policy_asked.get()), (17, 10));
        assert_eq!(listings.len(), 2, "one entry per server and listing");
    }
}
