//! The load generator: closed loop (N workers, each sending its next request when the last one
//! answered), open loop (requests started on a fixed schedule whatever the answers' pace, so a
//! slow answer holds no other back) and many held connections; the
//! latency summary; and CPU and memory of a process read from `/proc`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use serde::Serialize;

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A pooled HTTP/1.1 client (keep-alive), or one that opens a new connection per request.
pub(crate) fn client(fresh_connections: bool) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let mut builder = Client::builder(TokioExecutor::new());
    if fresh_connections {
        builder.pool_max_idle_per_host(0);
    }
    builder.build(connector)
}

/// One request, sent again and again.
#[derive(Clone)]
pub(crate) struct Template {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
    /// What counts as success: a JSON-RPC result (MCP requests), or `expect_status` (REST
    /// reads).
    pub(crate) expect_rpc_result: bool,
    pub(crate) expect_status: u16,
}

impl Template {
    pub(crate) fn post(url: &str, body: Bytes) -> Template {
        Template {
            method: Method::POST,
            url: url.to_owned(),
            headers: vec![
                (
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    axum::http::header::ACCEPT,
                    HeaderValue::from_static("application/json, text/event-stream"),
                ),
            ],
            body,
            expect_rpc_result: true,
            expect_status: 200,
        }
    }

    pub(crate) fn get(url: &str) -> Template {
        Template {
            method: Method::GET,
            url: url.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
            expect_rpc_result: false,
            expect_status: 200,
        }
    }

    /// Success is this status instead of 200 (a `304 Not Modified`, say).
    pub(crate) fn expecting(mut self, status: u16) -> Template {
        self.expect_status = status;
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> anyhow::Result<Template> {
        self.headers
            .push((HeaderName::from_static(name), HeaderValue::from_str(value)?));
        Ok(self)
    }

    /// Success or what went wrong, by what this request expects.
    fn check(&self, answer: anyhow::Result<Answer>) -> Result<(), String> {
        match answer {
            Ok(a)
                if a.is_result() || (!self.expect_rpc_result && a.status == self.expect_status) =>
            {
                Ok(())
            }
            Ok(a) => Err(a.describe()),
            Err(e) => Err(format!("{e:#}")),
        }
    }

    fn request(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(&self.url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        Ok(request.body(Full::new(self.body.clone()))?)
    }
}

/// What one answer was: its headers are needed once (a session id), its body checked always.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// A JSON-RPC result (plain JSON or the `data:` line of an SSE stream), not an error.
    pub(crate) fn is_result(&self) -> bool {
        self.status == 200 && contains(&self.body, b"\"result\"")
    }

    /// What went wrong, for the report: the status and the start of the body.
    pub(crate) fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned();
        format!("HTTP {}: {text}", self.status)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) async fn send(client: &HttpClient, template: &Template) -> anyhow::Result<Answer> {
    let response = client.request(template.request()?).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// Latencies (µs) and failures of one run.
#[derive(Default)]
pub(crate) struct Samples {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

impl Samples {
    fn record(&mut self, took: Duration, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self
                .latencies_us
                .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX)),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: Samples) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub(crate) fn summary(mut self) -> Summary {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let at = |q: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            self.latencies_us[rank - 1] as f64 / 1000.0
        };
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        Summary {
            requests: n as u64,
            errors: self.errors,
            first_error: self.first_error,
            seconds,
            throughput: n as f64 / seconds,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Throughput and latency percentiles of one run.
#[derive(Clone, Serialize)]
pub(crate) struct Summary {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_error: Option<String>,
    pub(crate) seconds: f64,
    /// Successful requests per second.
    pub(crate) throughput: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// `concurrency` workers, each preparing its request once (a legacy worker opens its session
/// there) and then sending it back to back for `duration`.
pub(crate) async fn closed_loop<F, Fut>(
    client: &HttpClient,
    concurrency: usize,
    duration: Duration,
    prepare: F,
) -> anyhow::Result<Samples>
where
    F: Fn(HttpClient) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Template>> + Send + 'static,
{
    let mut templates = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        templates.push(prepare(client.clone()).await?);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    for template in templates {
        let client = client.clone();
        workers.spawn(async move {
            let mut samples = Samples::default();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let outcome = template.check(send(&client, &template).await);
                samples.record(sent.elapsed(), outcome);
            }
            samples
        });
    }
    let mut all = Samples::default();
    while let Some(samples) = workers.join_next().await {
        all.merge(samples?);
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// The most requests an open loop keeps waiting at once.
const MAX_IN_FLIGHT: usize = 2_048;

/// Requests started at `rate` per second for `duration`, whatever the answers' pace.
pub(crate) async fn open_loop(
    client: &HttpClient,
    rate: f64,
    duration: Duration,
    template: Template,
) -> anyhow::Result<Samples> {
    anyhow::ensure!(rate > 0.0, "the open loop's rate must be above zero");
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (duration.as_secs_f64() * rate).round() as u64;
    let template = Arc::new(template);
    // A system that falls this far behind is overloaded: further requests are counted as
    // failures rather than opening ever more connections.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let started = tokio::time::Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let (client, template) = (client.clone(), template.clone());
        let permit = in_flight.clone().try_acquire_owned();
        requests.spawn(async move {
            let Ok(_permit) = permit else {
                let behind = format!("{MAX_IN_FLIGHT} requests were already waiting for an answer");
                return (Duration::ZERO, Err(behind));
            };
            // Counted from the send: each request is started on schedule whatever the answers'
            // pace, so a slow answer delays no other (the timer's own slack is left out).
            let sent = Instant::now();
            let outcome = template.check(send(&client, &template).await);
            (sent.elapsed(), outcome)
        });
    }
    let mut all = Samples::default();
    while let Some(done) = requests.join_next().await {
        let (took, outcome) = done?;
        all.record(took, outcome);
    }
    all.elapsed = started.elapsed().max(duration);
    Ok(all)
}

/// `clients` connections held open at once, each its own HTTP/1.1 connection, each sending the
/// template every `period` (first at a random point of the period, so the load is smooth). Once
/// every client is connected and has been answered, `when_all_connected` runs (the caller reads
/// the servers' memory then).
pub(crate) async fn held_clients(
    addr: std::net::SocketAddr,
    clients: usize,
    period: Duration,
    duration: Duration,
    template: Template,
    when_all_connected: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Samples> {
    // A raw connection sends no Host of its own (the pooled client takes it from the URL).
    let template = Arc::new(template.header("host", &addr.to_string())?);
    // Connections are opened a few hundred at a time, as a fleet of agents ramps up.
    let opening = Arc::new(tokio::sync::Semaphore::new(256));
    // Each client adds a permit once it is connected and answered (or failed to connect); none
    // waits for the others, so the load stays as smooth as its schedule.
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (template, opening, ready) = (template.clone(), opening.clone(), ready.clone());
        tasks.spawn(async move {
            let mut samples = Samples::default();
            let connected = async {
                let _permit = opening.acquire().await?;
                let stream = tokio::net::TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                anyhow::Ok(sender)
            }
            .await;
            let mut sender = match connected {
                Ok(s) => s,
                Err(e) => {
                    samples.record(Duration::ZERO, Err(format!("connect: {e:#}")));
                    ready.add_permits(1);
                    return samples;
                }
            };
            let mut first = true;
            tokio::time::sleep(period.mul_f64(fastrand::f64())).await;
            loop {
                let sent = Instant::now();
                let outcome = async {
                    let response = sender.send_request(template.request()?).await?;
                    let status = response.status().as_u16();
                    let body = response.into_body().collect().await?.to_bytes();
                    anyhow::Ok(Answer {
                        status,
                        headers: Default::default(),
                        body,
                    })
                }
                .await;
                samples.record(sent.elapsed(), template.check(outcome));
                if first {
                    first = false;
                    ready.add_permits(1);
                }
                let next = sent + period;
                if next >= deadline {
                    break;
                }
                tokio::time::sleep_until(next.into()).await;
            }
            samples
        });
    }
    let everyone = u32::try_from(clients).unwrap_or(u32::MAX);
    ready.acquire_many(everyone).await?.forget();
    when_all_connected.await;
    let mut all = Samples::default();
    while let Some(samples) = tasks.join_next().await {
        all.merge(samples?);
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// CPU seconds used and resident memory of a process, from `/proc`.
#[derive(Clone, Copy, Default)]
pub(crate) struct Usage {
    pub(crate) cpu_seconds: f64,
    /// Everything resident, the executable's code pages mapped from disk included.
    pub(crate) rss_bytes: u64,
    /// The process's own memory: resident anonymous pages (heap, stacks), without the
    /// executable's code (`RssAnon`).
    pub(crate) anon_bytes: u64,
}

/// One process's usage, and its process group, from `/proc/<pid>/stat` and `status`.
fn read_process(pid: &str) -> Option<(u32, Usage)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state: the process group
    // is the 3rd of those, utime and stime the 12th and 13th.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let number = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let group = fields.get(2)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some((
        group,
        Usage {
            // The kernel's USER_HZ, which is 100 on every Linux architecture this runs on.
            cpu_seconds: (number(11) + number(12)) / 100.0,
            rss_bytes: kb("VmRSS:") * 1024,
            anon_bytes: kb("RssAnon:") * 1024,
        },
    ))
}

/// What `pid` uses, with every process of the group it leads (a server's worker processes).
pub(crate) fn usage(pid: u32) -> Usage {
    let mut total = read_process(&pid.to_string())
        .map(|(_, u)| u)
        .unwrap_or_default();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return total;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == pid.to_string() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Some((group, usage)) = read_process(name)
            && group == pid
        {
            total.cpu_seconds += usage.cpu_seconds;
            total.rss_bytes += usage.rss_bytes;
            total.anon_bytes += usage.anon_bytes;
        }
    }
    total
}

/// CPU share and peak memory of processes over one scenario: sampled every 100 ms.
pub(crate) struct Watch {
    pids: Vec<u32>,
    before: Vec<Usage>,
    /// Per process: the highest resident and anonymous memory sampled.
    peak: Arc<Mutex<Vec<(u64, u64)>>>,
    started: Instant,
    sampler: tokio::task::JoinHandle<()>,
}

/// What a watched process used during a scenario.
#[derive(Clone, Copy, Serialize)]
pub(crate) struct Used {
    /// Cores kept busy on average (1.0 = one core all the time).
    pub(crate) cpu_cores: f64,
    pub(crate) peak_rss_mb: f64,
    /// The peak of the process's own (anonymous) memory, without its code pages.
    pub(crate) peak_anon_mb: f64,
}

impl Watch {
    pub(crate) fn start(pids: Vec<u32>) -> Watch {
        let before: Vec<Usage> = pids.iter().map(|p| usage(*p)).collect();
        let peak: Arc<Mutex<Vec<(u64, u64)>>> = Arc::new(Mutex::new(
            before.iter().map(|u| (u.rss_bytes, u.anon_bytes)).collect(),
        ));
        let sampler = {
            let (pids, peak) = (pids.clone(), peak.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let now: Vec<Usage> = pids.iter().map(|p| usage(*p)).collect();
                    if let Ok(mut peak) = peak.lock() {
                        for ((rss, anon), n) in peak.iter_mut().zip(now) {
                            *rss = (*rss).max(n.rss_bytes);
                            *anon = (*anon).max(n.anon_bytes);
                        }
                    }
                }
            })
        };
        Watch {
            pids,
            before,
            peak,
            started: Instant::now(),
            sampler,
        }
    }

    pub(crate) fn stop(self) -> Vec<Used> {
        self.sampler.abort();
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let peak = self.peak.lock().map(|p| p.clone()).unwrap_or_default();
        self.pids
            .iter()
            .zip(&self.before)
            .zip(peak)
            .map(|((pid, before), (rss, anon))| {
                let after = usage(*pid);
                let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
                Used {
                    cpu_cores: (after.cpu_seconds - before.cpu_seconds) / wall,
                    peak_rss_mb: mb(rss.max(after.rss_bytes)),
                    peak_anon_mb: mb(anon.max(after.anon_bytes)),
                }
            })
            .collect()
    }
}
