use super::*;

#[test]
fn names_follow_dockers_rule() {
    assert!(valid_name("web"));
    assert!(valid_name("a.b-c_d1"));
    assert!(!valid_name("x"));
    assert!(!valid_name("-web"));
    assert!(!valid_name("bad name"));
    assert!(!valid_name("we/b"));
}

#[test]
fn ids_are_64_hex_and_never_numeric_in_short_form() {
    for _ in 0..50 {
        let id = random_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!id[..12].bytes().all(|b| b.is_ascii_digit()));
    }
}

#[test]
fn statuses_round_trip_and_running_includes_paused() {
    for status in [
        Status::Created,
        Status::Running,
        Status::Paused,
        Status::Restarting,
        Status::Removing,
        Status::Exited,
        Status::Dead,
    ] {
        assert_eq!(Status::parse(status.as_str()), Some(status));
    }
    assert_eq!(Status::parse("up"), None);
    assert!(Status::Paused.is_running());
    assert!(!Status::Exited.is_running());
    assert_eq!(
        serde_json::to_string(&Status::Exited).unwrap(),
        "\"exited\""
    );
}

#[test]
fn error_texts_are_dockers() {
    let err = ContainerError::NameInUse {
        name: "/web".into(),
        id: "abc".into(),
    };
    assert_eq!(
        err.to_string(),
        "Conflict. The container name \"/web\" is already in use by container \"abc\". You have to remove (or rename) that container to be able to reuse that name."
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = ContainerError::NotFound("x".into());
    assert_eq!(err.to_string(), "No such container: x");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        ContainerError::Ambiguous("ab".into()).to_string(),
        "multiple IDs found with provided prefix: ab"
    );
}
