//! OpenAI model routing: a route that lists `models` takes only requests whose body names one of them, is
//! preferred over an equal route that lists none, and tells the gateway when a body must be read first.

use swell_api::route::RouteColdStart;

use super::*;

fn serving(name: &str, prefix: &str, models: &[&str]) -> NamedRoute {
    let mut route = single(name, &[], prefix);
    route.spec.models = models.iter().map(|model| (*model).to_owned()).collect();
    route
}

fn model_route(table: &RouteTable<String>, path: &str, model: Option<&str>) -> Option<String> {
    let none = headers(&[]);
    let view = RequestView { host: None, path, headers: &none };
    table.select_model_request(&view, model, Rolls::default()).map(|selected| selected.route.to_owned())
}

#[test]
fn the_body_model_picks_among_routes_of_one_path() {
    let table = build(&[
        single("any", &[], "/v1"),
        serving("llama", "/v1", &["llama-3-8b", "llama-3-8b-instruct"]),
        serving("qwen", "/v1", &["qwen-2.5-7b"]),
    ])
    .unwrap();
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("/v1/completions", Some("llama-3-8b"), Some("llama")),
        ("/v1/chat/completions", Some("llama-3-8b-instruct"), Some("llama")),
        ("/v1/completions", Some("qwen-2.5-7b"), Some("qwen")),
        // A model no route lists, or no model at all, falls to the route that lists none.
        ("/v1/completions", Some("mistral"), Some("any")),
        ("/v1/completions", None, Some("any")),
        // Model names are compared exactly.
        ("/v1/completions", Some("LLAMA-3-8B"), Some("any")),
        // Outside the prefix nothing matches.
        ("/other", Some("llama-3-8b"), None),
    ];
    for &(path, model, want) in cases {
        assert_eq!(model_route(&table, path, model).as_deref(), want, "path {path} model {model:?}");
    }
    // Without a body, model routes never match.
    assert_eq!(selected_route(&table, None, "/v1/completions").as_deref(), Some("any"));
}

#[test]
fn without_a_catch_all_an_unknown_model_matches_nothing() {
    let table = build(&[serving("llama", "/v1", &["llama-3-8b"])]).unwrap();
    assert_eq!(model_route(&table, "/v1/completions", Some("gpt-4")), None);
    assert_eq!(model_route(&table, "/v1/completions", None), None);
    assert_eq!(model_route(&table, "/v1/completions", Some("llama-3-8b")).as_deref(), Some("llama"));
}

#[test]
fn wants_model_only_where_a_model_route_could_match() {
    let plain = build(&[single("any", &[], "/")]).unwrap();
    let none = headers(&[]);
    let view = |path| RequestView { host: None, path, headers: &none };
    assert!(!plain.wants_model(&view("/v1/completions")));

    let mut hosted = serving("llama", "/v1", &["llama-3-8b"]);
    hosted.spec.hosts = vec!["llm.example.com".to_owned()];
    let table = build(&[single("any", &[], "/"), hosted]).unwrap();
    assert!(!table.wants_model(&view("/v1/completions")), "host does not fit");
    let on_host = RequestView { host: Some("llm.example.com"), path: "/v1/completions", headers: &none };
    assert!(table.wants_model(&on_host));
    let off_path = RequestView { host: Some("llm.example.com"), path: "/healthz", headers: &none };
    assert!(!table.wants_model(&off_path));
}

#[test]
fn models_are_listed_once_each_and_keep_alive_is_compiled() {
    let mut llama = serving("llama", "/v1", &["llama-3-8b", "shared"]);
    llama.spec.cold_start = Some(RouteColdStart { stream_keep_alive: Some("2s".to_owned()) });
    let table = build(&[llama, serving("qwen", "/v1", &["qwen", "shared"])]).unwrap();
    let mut models = table.models();
    models.sort_unstable();
    assert_eq!(models, ["llama-3-8b", "qwen", "shared"]);

    let none = headers(&[]);
    let view = RequestView { host: None, path: "/v1/completions", headers: &none };
    let selected = table.select_model_request(&view, Some("llama-3-8b"), Rolls::default()).unwrap();
    assert!(selected.route_has_models());
    assert_eq!(selected.stream_keep_alive(), Some(std::time::Duration::from_secs(2)));

    let mut bad = serving("bad", "/v1", &["m"]);
    bad.spec.cold_start = Some(RouteColdStart { stream_keep_alive: Some("soon".to_owned()) });
    assert_eq!(
        build(&[bad]).unwrap_err(),
        RouteError::BadKeepAlive { route: "bad".to_owned(), value: "soon".to_owned() }
    );
}

#[test]
fn route_indexes_follow_the_table_order() {
    let table =
        build(&[single("short", &[], "/a"), single("long", &[], "/a/b/c"), single("mid", &[], "/a/b")]).unwrap();
    let names: Vec<&str> = table.route_names().collect();
    assert_eq!(names, ["long", "mid", "short"]);
    for (path, want) in [("/a/b/c/d", "long"), ("/a/b", "mid"), ("/a", "short")] {
        let selected = table.select(None, path, 0).unwrap();
        assert_eq!(names[selected.route_index()], want);
    }
}
