//! Route selection: what the gateway does once per request before anything else. A table of 100 routes (exact
//! hosts with tags, `*.domain` wildcards, any-host prefixes with header matches, sticky splits and mirrors) is
//! queried with a request carrying a realistic set of headers, one scenario per benchmark, then a mix of all.
//! Each figure is the time of one `select_request` (or the legacy `select`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue};
use swell_api::route::{HeaderMatch, RouteMatch};
use swell_api::{MirrorTarget, NamedRoute, RouteSpec, TrafficTarget};
use swell_router::{RequestView, Rolls, RouteTable};

fn target(revision: String, percent: u32, tag: Option<&str>) -> TrafficTarget {
    TrafficTarget { revision_name: revision, percent, tag: tag.map(str::to_owned) }
}

fn route(name: String, hosts: Vec<String>, prefix: String) -> NamedRoute {
    let traffic = vec![target(format!("{name}-v1"), 90, None), target(format!("{name}-v2"), 10, Some("canary"))];
    NamedRoute {
        name,
        spec: RouteSpec {
            hosts,
            path_prefix: prefix,
            matches: RouteMatch::default(),
            traffic,
            sticky_header: None,
            mirror: None,
            fallback: None,
            models: Vec::new(),
            cold_start: None,
        },
    }
}

/// 40 exact-host routes, 20 wildcard routes, 40 any-host routes (10 with a header match, 10 sticky, 10
/// mirrored): 100 in all.
fn routes() -> Vec<NamedRoute> {
    let mut routes = Vec::new();
    for i in 0..40 {
        routes.push(route(format!("exact{i}"), vec![format!("svc{i}.example.com")], format!("/v1/models/m{i}")));
    }
    for i in 0..20 {
        routes.push(route(format!("wild{i}"), vec![format!("*.team{i}.example.net")], "/v1/models".to_owned()));
    }
    for i in 0..40 {
        let mut route = route(format!("shared{i}"), vec![], format!("/v1/models/shared{}", i % 30));
        match i / 10 {
            0 => route.spec.matches.headers = vec![HeaderMatch { name: "x-model-tier".into(), exact: "gold".into() }],
            1 => route.spec.sticky_header = Some("x-user-id".to_owned()),
            2 => {
                route.spec.mirror =
                    Some(MirrorTarget { revision_name: format!("shadow{i}"), percent: 10, max_body_bytes: None })
            }
            _ => {}
        }
        routes.push(route);
    }
    routes
}

/// Headers a typical inference client sends, plus `extra`.
fn headers(extra: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in [
        ("user-agent", "python-requests/2.32.3"),
        ("accept", "*/*"),
        ("accept-encoding", "gzip, deflate"),
        ("content-type", "application/json"),
        ("content-length", "187"),
        ("x-request-id", "0b6f1c9e-5e7d-4f7e-9a51-2f3c0b1d7e44"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        map.append(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    map
}

struct Scenario {
    name: &'static str,
    host: &'static str,
    path: &'static str,
    headers: HeaderMap,
    /// The route it must reach, so the bench measures the intended path through the table.
    want: Option<&'static str>,
}

fn scenarios() -> Vec<Scenario> {
    let scenario = |name, host, path, extra: &[(&'static str, &'static str)], want| Scenario {
        name,
        host,
        path,
        headers: headers(extra),
        want,
    };
    vec![
        scenario("exact host", "svc17.example.com:8080", "/v1/models/m17:predict", &[], Some("exact17")),
        scenario("wildcard host", "api.team7.example.net", "/v1/models/x:predict", &[], Some("wild7")),
        scenario("any host, prefix", "other.org", "/v1/models/shared25:predict", &[], Some("shared25")),
        scenario("tag host", "canary-svc17.example.com", "/v1/models/m17:predict", &[], Some("exact17")),
        scenario(
            "tag header",
            "svc17.example.com",
            "/v1/models/m17:predict",
            &[("swell-tag", "canary")],
            Some("exact17"),
        ),
        scenario("header match", "other.org", "/v1/models/shared5", &[("x-model-tier", "gold")], Some("shared5")),
        scenario("sticky", "other.org", "/v1/models/shared15", &[("x-user-id", "user-8231")], Some("shared15")),
        scenario("mirrored", "other.org", "/v1/models/shared25", &[], Some("shared25")),
        scenario("no match", "other.org", "/healthz", &[], None),
    ]
}

fn selection(c: &mut Criterion) {
    let routes = routes();
    let table = RouteTable::build(&routes, |revision| Some(revision.len())).unwrap_or_default();
    assert_eq!(table.len(), 100, "the bench table must build");
    let scenarios = scenarios();
    for scenario in &scenarios {
        let view = RequestView { host: Some(scenario.host), path: scenario.path, headers: &scenario.headers };
        let got = table.select_request(&view, Rolls::new(0, 0)).map(|selected| selected.route);
        assert_eq!(got, scenario.want, "scenario {}", scenario.name);
    }

    let mut group = c.benchmark_group("route select, 100 routes");
    let mut roll = 0u32;
    for scenario in &scenarios {
        let view = RequestView { host: Some(scenario.host), path: scenario.path, headers: &scenario.headers };
        group.bench_function(scenario.name, |b| {
            b.iter(|| {
                roll = roll.wrapping_add(0x9e37_79b9);
                black_box(table.select_request(black_box(&view), Rolls::new(roll, roll >> 7)).map(|s| *s.target))
            })
        });
    }
    let legacy = &scenarios[0];
    group.bench_function("exact host, legacy select(host, path, roll)", |b| {
        b.iter(|| {
            roll = roll.wrapping_add(0x9e37_79b9);
            black_box(table.select(black_box(Some(legacy.host)), black_box(legacy.path), roll).map(|s| *s.target))
        })
    });
    // All scenarios in turn, so branch predictors cannot learn one path.
    group.throughput(Throughput::Elements(scenarios.len() as u64));
    group.bench_function("mix of all scenarios", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for scenario in &scenarios {
                roll = roll.wrapping_add(0x9e37_79b9);
                let view = RequestView { host: Some(scenario.host), path: scenario.path, headers: &scenario.headers };
                sum += table.select_request(black_box(&view), Rolls::new(roll, roll >> 7)).map_or(0, |s| *s.target);
            }
            black_box(sum)
        })
    });
    group.finish();
}

criterion_group!(benches, selection);
criterion_main!(benches);
