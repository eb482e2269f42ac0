//! Route objects → the gateway's `NamedRoute` list. Revisions are namespaced and a Route names revisions
//! of its own namespace, while the gateway's route table knows one flat set of revisions; so every name
//! is qualified as `namespace/name` here, and the gateway's revision handles carry the same names.
//! A route naming a revision the gateway does not know is left out (and reported) rather than refusing
//! the whole table: the others keep working, as the controller's per-route status says.

use kube::ResourceExt;
use swell_api::NamedRoute;
use swell_kube_api::crd::Route;
use swell_kube_api::stats::RevisionKey;

/// The gateway-wide name of a revision.
pub fn qualified(key: &RevisionKey) -> String {
    key.to_string()
}

/// Routes to serve, and the `namespace/route` names of those left out with why.
pub fn named_routes<'a>(
    routes: impl IntoIterator<Item = &'a Route>,
    known: impl Fn(&RevisionKey) -> bool,
) -> (Vec<NamedRoute>, Vec<String>) {
    let mut serve = Vec::new();
    let mut skipped = Vec::new();
    for route in routes {
        let Some(ns) = route.namespace() else { continue };
        let name = format!("{ns}/{}", route.name_any());
        let mut spec = route.spec.0.clone();
        let mut missing = None;
        let mut qualify = |revision: &mut String| {
            let key = RevisionKey::new(&ns, revision.as_str());
            if !known(&key) {
                missing.get_or_insert_with(|| key.to_string());
            }
            *revision = qualified(&key);
        };
        for target in &mut spec.traffic {
            qualify(&mut target.revision_name);
        }
        if let Some(mirror) = spec.mirror.as_mut() {
            qualify(&mut mirror.revision_name);
        }
        match missing {
            Some(revision) => skipped.push(format!("{name}: revision {revision} not found")),
            None => serve.push(NamedRoute { name, spec }),
        }
    }
    // Stable order, so an unchanged set of objects gives an equal list (and no table swap).
    serve.sort_by(|a, b| a.name.cmp(&b.name));
    (serve, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(ns: &str, name: &str, spec: serde_json::Value) -> Route {
        serde_json::from_value(json!({
            "apiVersion": "serving.swell.dev/v1alpha1", "kind": "Route",
            "metadata": {"name": name, "namespace": ns}, "spec": spec,
        }))
        .expect("a Route")
    }

    #[test]
    fn names_are_qualified_and_routes_to_unknown_revisions_are_left_out() {
        let routes = vec![
            route(
                "ml",
                "sentiment",
                json!({"pathPrefix": "/v1/models/s", "traffic": [
                    {"revisionName": "s-v1", "percent": 90}, {"revisionName": "s-v2", "percent": 10, "tag": "canary"}],
                    "mirror": {"revisionName": "s-v3", "percent": 5}}),
            ),
            route("ml", "broken", json!({"pathPrefix": "/b", "traffic": [{"revisionName": "gone", "percent": 100}]})),
            route("other", "a", json!({"pathPrefix": "/a", "traffic": [{"revisionName": "s-v1", "percent": 100}]})),
        ];
        let known = |k: &RevisionKey| k.namespace != "ml" || k.name.starts_with("s-");
        let (serve, skipped) = named_routes(&routes, known);
        let names: Vec<&str> = serve.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["ml/sentiment", "other/a"]);
        let sentiment = &serve[0].spec;
        let targets: Vec<(&str, u32)> =
            sentiment.traffic.iter().map(|t| (t.revision_name.as_str(), t.percent)).collect();
        assert_eq!(targets, [("ml/s-v1", 90), ("ml/s-v2", 10)]);
        assert_eq!(sentiment.traffic[1].tag.as_deref(), Some("canary"));
        assert_eq!(sentiment.mirror.as_ref().map(|m| m.revision_name.as_str()), Some("ml/s-v3"));
        assert_eq!(serve[1].spec.traffic[0].revision_name, "other/s-v1");
        assert_eq!(skipped, ["ml/broken: revision ml/gone not found"]);
    }
}
