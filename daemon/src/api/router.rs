//! Route table: method + path pattern -> handler. Patterns are literal
//! segments, `{name}` (one segment) and at most one `{name:.*}` that spans
//! several segments, so image and container references with `/` and `:`
//! (`/images/127.0.0.1:5000/box:v1/json`) reach their handler. Routes are
//! tried in registration order: register fixed paths (`/images/json`) before
//! the patterns that would also match them, as moby does.

use std::future::Future;
use std::pin::Pin;

use http::Method;

use super::Call;
use super::error::ApiResult;
use super::query::percent_decode;

type BoxFuture = Pin<Box<dyn Future<Output = ApiResult> + Send>>;
type Handler = Box<dyn Fn(Call) -> BoxFuture + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name:.*}`: one or more segments.
    Rest(String),
}

struct Route {
    method: Method,
    segments: Vec<Segment>,
    handler: Handler,
}

/// Path parameters of the matched route, percent-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    #[allow(dead_code)] // used by container and image routes
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub(crate) struct Router {
    routes: Vec<Route>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for route in &self.routes {
            list.entry(&(&route.method, &route.segments));
        }
        list.finish()
    }
}

fn parse_pattern(pattern: &str) -> Vec<Segment> {
    let segments: Vec<Segment> = pattern
        .trim_start_matches('/')
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(inner) => match inner.strip_suffix(":.*") {
                    Some(name) => Segment::Rest(name.to_owned()),
                    None => Segment::Param(inner.to_owned()),
                },
                None => Segment::Literal(s.to_owned()),
            },
        )
        .collect();
    let rests = segments
        .iter()
        .filter(|s| matches!(s, Segment::Rest(_)))
        .count();
    assert!(
        rests <= 1,
        "route {pattern}: at most one {{name:.*}} segment"
    );
    segments
}

fn match_segments(pattern: &[Segment], path: &[&str]) -> Option<Params> {
    let mut params = Vec::new();
    let rest_at = pattern.iter().position(|s| matches!(s, Segment::Rest(_)));
    let (head, tail) = match rest_at {
        Some(i) => (&pattern[..i], &pattern[i + 1..]),
        None => (pattern, &[][..]),
    };
    let fixed = head.len() + tail.len();
    if rest_at.is_none() && path.len() != fixed || rest_at.is_some() && path.len() <= fixed {
        return None;
    }
    let tail_start = path.len() - tail.len();
    let pairs = head
        .iter()
        .zip(&path[..head.len()])
        .chain(tail.iter().zip(&path[tail_start..]));
    for (segment, part) in pairs {
        match segment {
            Segment::Literal(literal) if literal == part => {}
            Segment::Param(name) if !part.is_empty() => {
                params.push((name.clone(), percent_decode(part)));
            }
            _ => return None,
        }
    }
    if let Some(Segment::Rest(name)) = rest_at.map(|i| &pattern[i]) {
        let middle = path[head.len()..tail_start].join("/");
        if middle.is_empty() {
            return None;
        }
        params.push((name.clone(), percent_decode(&middle)));
    }
    Some(Params(params))
}

impl Router {
    pub(crate) fn add<F, Fut>(&mut self, method: Method, pattern: &str, handler: F) -> &mut Self
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ApiResult> + Send + 'static,
    {
        self.routes.push(Route {
            method,
            segments: parse_pattern(pattern),
            handler: Box::new(move |call| Box::pin(handler(call))),
        });
        self
    }

    pub(crate) fn get<F, Fut>(&mut self, pattern: &str, handler: F) -> &mut Self
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ApiResult> + Send + 'static,
    {
        self.add(Method::GET, pattern, handler)
    }

    /// The first route matching `method` and `path` (a path without the `/vX.Y` prefix).
    pub(crate) fn find(
        &self,
        method: &Method,
        path: &str,
    ) -> Option<(&(dyn Fn(Call) -> BoxFuture + Send + Sync), Params)> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.routes
            .iter()
            .filter(|route| route.method == method)
            .find_map(|route| {
                match_segments(&route.segments, &parts).map(|params| (&*route.handler, params))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match_segments(&parse_pattern(pattern), &parts).map(|p| p.0)
    }

    fn pair(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_owned(), v.to_owned())]
    }

    #[test]
    fn literal_and_single_segment_params() {
        assert_eq!(matches("/_ping", "/_ping"), Some(vec![]));
        assert_eq!(matches("/_ping", "/_ping/x"), None);
        assert_eq!(
            matches("/exec/{id}/json", "/exec/abc/json"),
            Some(pair("id", "abc"))
        );
        assert_eq!(matches("/exec/{id}/json", "/exec//json"), None);
    }

    #[test]
    fn rest_params_span_slashes_and_colons() {
        assert_eq!(
            matches(
                "/images/{name:.*}/json",
                "/images/127.0.0.1:5055/compatprobe/box:latest/json"
            ),
            Some(pair("name", "127.0.0.1:5055/compatprobe/box:latest"))
        );
        assert_eq!(matches("/images/{name:.*}/json", "/images/json"), None);
        assert_eq!(
            matches("/images/{name:.*}", "/images/docker.io%2Fbusybox"),
            Some(pair("name", "docker.io/busybox"))
        );
        assert_eq!(
            matches("/images/{name:.*}", "/images/busybox%40sha256:abc"),
            Some(pair("name", "busybox@sha256:abc"))
        );
    }

    #[tokio::test]
    async fn fixed_routes_registered_first_win_and_methods_must_match() {
        let mut router = Router::default();
        router
            .get("/images/json", |_call| async {
                Err(super::super::error::ApiError::bad_request("list"))
            })
            .get("/images/{name:.*}/json", |_call| async {
                Err(super::super::error::ApiError::bad_request("inspect"))
            });
        let (_, params) = router.find(&Method::GET, "/images/json").unwrap();
        assert_eq!(params, Params::default());
        let (_, params) = router.find(&Method::GET, "/images/a/b:c/json").unwrap();
        assert_eq!(params.get("name"), Some("a/b:c"));
        assert!(router.find(&Method::POST, "/images/json").is_none());
        assert!(router.find(&Method::GET, "/nope").is_none());
    }
}
