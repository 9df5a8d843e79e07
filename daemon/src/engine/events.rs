//! The in-memory event bus: the engine publishes what happens (container
//! started, image pulled...), `GET /events` replays recent events from a
//! bounded ring and then follows live ones from a broadcast channel.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use super::filters::Filters;

/// How many recent events are kept for `since` replays (moby keeps 256).
const RING_CAPACITY: usize = 1024;
/// How far a slow live listener may fall behind before it skips events.
const LIVE_CAPACITY: usize = 1024;

/// The filter names `GET /events` accepts (moby's list).
pub(crate) const EVENT_FILTERS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// The kind of object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // publishers arrive with containers, images, volumes
pub(crate) enum EventType {
    Container,
    Image,
    Network,
    Volume,
    Daemon,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Image => "image",
            EventType::Network => "network",
            EventType::Volume => "volume",
            EventType::Daemon => "daemon",
        }
    }
}

/// One thing that happened, in domain terms; `api` renders Docker's wire shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) kind: EventType,
    /// `start`, `die`, `pull`, `exec_start: sh -c ...`, ...
    pub(crate) action: String,
    /// Container or image id, network id, volume name...
    pub(crate) actor_id: String,
    /// `name`, `image`, `exitCode`, labels...
    pub(crate) attributes: BTreeMap<String, String>,
    /// Unix time in nanoseconds.
    pub(crate) time_nano: i64,
}

impl Event {
    /// An event stamped with the current time.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn now(
        kind: EventType,
        action: impl Into<String>,
        actor_id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        Event {
            kind,
            action: action.into(),
            actor_id: actor_id.into(),
            attributes,
            time_nano: unix_nanos(SystemTime::now()),
        }
    }

    /// Docker's event filter rules (`moby:daemon/events/filter.go`).
    pub(crate) fn matches(&self, filters: &Filters) -> bool {
        let name = self
            .attributes
            .get("name")
            .map(String::as_str)
            .unwrap_or("");
        let id = self.actor_id.as_str();
        let prefix_of_id_or_name = |v: &str| id.starts_with(v) || name.starts_with(v);
        // The CLI sends `exec_start` for actions like `exec_start: sh -c ...`.
        let fuzzy_event = ["exec_create", "exec_start", "health_status"]
            .iter()
            .any(|a| filters.get("event").any(|v| v == *a));
        let event_ok = filters.any_or_absent("event", |v| {
            v == self.action || (fuzzy_event && self.action.starts_with(v))
        });
        let image_name = match self.kind {
            EventType::Image => name,
            _ => self
                .attributes
                .get("image")
                .map(String::as_str)
                .unwrap_or(""),
        };
        let image_ok = filters.any_or_absent("image", |v| {
            [id, image_name, strip_tag(id), strip_tag(image_name)]
                .iter()
                .any(|candidate| !candidate.is_empty() && *candidate == v)
        });
        event_ok
            && image_ok
            && filters.any_or_absent("type", |v| v == self.kind.as_str())
            && filters.any_or_absent("scope", |v| v == "local")
            && ["container", "network", "volume", "daemon", "plugin"]
                .iter()
                .all(|key| filters.any_or_absent(key, prefix_of_id_or_name))
            && filters.labels_match("label", &self.attributes)
    }
}

/// `busybox:latest` -> `busybox`, leaving a registry port alone.
fn strip_tag(reference: &str) -> &str {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].find(':') {
        Some(colon) => &reference[..name_start + colon],
        None => reference,
    }
}

pub(crate) fn unix_nanos(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// Recent events plus a live feed.
#[derive(Debug)]
pub(crate) struct EventBus {
    recent: Mutex<VecDeque<Arc<Event>>>,
    live: broadcast::Sender<Arc<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            recent: Mutex::new(VecDeque::with_capacity(RING_CAPACITY)),
            live: broadcast::channel(LIVE_CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Records `event` and hands it to every live subscriber.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn publish(&self, event: Event) {
        let event = Arc::new(event);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RING_CAPACITY {
            recent.pop_front();
        }
        recent.push_back(event.clone());
        // Sent under the lock so `subscribe` sees each event exactly once:
        // either in its snapshot or on its receiver. No receivers is fine.
        let _ = self.live.send(event);
    }

    /// The recorded events at or after `since_nano` and a receiver of every
    /// event published after the snapshot was taken.
    pub(crate) fn subscribe(
        &self,
        since_nano: Option<i64>,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let past = match since_nano {
            Some(since) => recent
                .iter()
                .filter(|e| e.time_nano >= since)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (past, self.live.subscribe())
    }

    /// How many `GET /events` streams are following live events.
    pub(crate) fn listeners(&self) -> usize {
        self.live.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_event(action: &str, id: &str, name: &str, image: &str) -> Event {
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_owned(), name.to_owned());
        attributes.insert("image".to_owned(), image.to_owned());
        Event::now(EventType::Container, action, id, attributes)
    }

    #[tokio::test]
    async fn subscribers_get_the_past_since_a_time_then_live_events_once() {
        let bus = EventBus::default();
        let mut old = container_event("create", "aaa", "web", "busybox");
        old.time_nano = 1_000;
        bus.publish(old);
        bus.publish(container_event("start", "aaa", "web", "busybox"));

        let (past, mut live) = bus.subscribe(Some(2_000));
        assert_eq!(
            past.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["start"]
        );
        let (all, _) = bus.subscribe(Some(0));
        assert_eq!(all.len(), 2);
        let (none, _) = bus.subscribe(None);
        assert!(none.is_empty());
        // Only `live` is still held; the other receivers were dropped.
        assert_eq!(bus.listeners(), 1);

        bus.publish(container_event("die", "aaa", "web", "busybox"));
        assert_eq!(live.recv().await.unwrap().action, "die");
        assert!(live.try_recv().is_err());
    }

    #[test]
    fn ring_keeps_only_the_most_recent_events() {
        let bus = EventBus::default();
        for i in 0..RING_CAPACITY + 10 {
            let mut e = container_event("start", &format!("id{i}"), "n", "i");
            e.time_nano = i as i64;
            bus.publish(e);
        }
        let (past, _) = bus.subscribe(Some(0));
        assert_eq!(past.len(), RING_CAPACITY);
        assert_eq!(past[0].actor_id, "id10");
    }

    #[test]
    fn filters_follow_dockers_rules() {
        let event = container_event("exec_start: sh -c true", "abc123", "web", "busybox:latest");
        let f = |text: &str| Filters::parse(text).unwrap();
        assert!(event.matches(&f("")));
        assert!(event.matches(&f(r#"{"type":["container"]}"#)));
        assert!(!event.matches(&f(r#"{"type":["image"]}"#)));
        assert!(event.matches(&f(r#"{"event":["exec_start"]}"#)));
        assert!(!event.matches(&f(r#"{"event":["start"]}"#)));
        assert!(event.matches(&f(r#"{"container":{"web":true}}"#)));
        assert!(event.matches(&f(r#"{"container":["abc"]}"#)));
        assert!(!event.matches(&f(r#"{"container":["db"]}"#)));
        assert!(event.matches(&f(r#"{"image":["busybox"]}"#)));
        assert!(event.matches(&f(r#"{"image":["busybox:latest"]}"#)));
        assert!(!event.matches(&f(r#"{"image":["alpine"]}"#)));
        assert!(event.matches(&f(r#"{"label":["name=web"]}"#)));
        assert!(!event.matches(&f(r#"{"label":["tier"]}"#)));
        assert!(!event.matches(&f(r#"{"type":["container"],"container":["db"]}"#)));
    }

    #[test]
    fn strip_tag_keeps_registry_ports() {
        assert_eq!(strip_tag("busybox:latest"), "busybox");
        assert_eq!(strip_tag("127.0.0.1:5000/box:v1"), "127.0.0.1:5000/box");
        assert_eq!(strip_tag("127.0.0.1:5000/box"), "127.0.0.1:5000/box");
    }
}
