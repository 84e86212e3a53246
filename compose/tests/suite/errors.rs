//! Typical mistakes: the message, the position and the suggestion a user sees.

use crate::Dir;

fn one(files: &[(&str, &str)]) -> compose::Diagnostic {
    let d = Dir::new(files);
    let mut errs: Vec<_> = d
        .errors(&["compose.yaml"])
        .into_iter()
        .filter(|e| e.severity == compose::Severity::Error)
        .collect();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.remove(0)
}

#[test]
fn tab_indentation() {
    let e = one(&[("compose.yaml", "services:\n  web:\n\timage: nginx\n")]);
    assert!(e.pos.file.ends_with("compose.yaml"));
    assert_eq!(e.pos.line, 3, "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("tabs"), "{e}");
}

#[test]
fn misspelt_service_key() {
    let e = one(&[(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    enviroment:\n      A: b\n",
    )]);
    assert_eq!((e.pos.line, e.pos.col), (4, 5));
    assert_eq!(e.path, "services.web.enviroment");
    assert!(e.message.contains("unknown key \"enviroment\""), "{e}");
    assert_eq!(e.hint.as_deref(), Some("did you mean \"environment\"?"));
    let text = e.to_string();
    assert!(
        text.contains("compose.yaml:4:5: error: services.web.enviroment: unknown key"),
        "{text}"
    );
}

#[test]
fn wrong_type() {
    let e = one(&[(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: many\n",
    )]);
    assert_eq!((e.pos.line, e.pos.col), (5, 17));
    assert_eq!(e.path, "services.web.deploy.replicas");
    assert!(
        e.message
            .contains("expected a non-negative integer, found \"many\""),
        "{e}"
    );
}

#[test]
fn bad_port() {
    let e = one(&[(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    ports:\n      - 80:80\n      - \"8080:http\"\n",
    )]);
    assert_eq!(e.path, "services.web.ports[1]");
    assert_eq!(e.pos.line, 6);
    assert!(e.message.contains("invalid port \"8080:http\""), "{e}");
    assert!(e.message.contains("not a port number"), "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("HOST_IP"), "{e}");
}

#[test]
fn undefined_network() {
    let e = one(&[(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    networks: [frontend]\nnetworks:\n  front-end: {}\n",
    )]);
    assert_eq!(e.path, "services.web.networks.frontend");
    assert_eq!(e.pos.line, 4);
    assert!(
        e.message.contains("network \"frontend\" is not defined"),
        "{e}"
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean \"front-end\"?"));
}

#[test]
fn cyclic_depends_on() {
    let e = one(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n",
    )]);
    assert!(
        e.message
            .contains("dependency cycle detected: a -> b -> c -> a"),
        "{e}"
    );
    assert_eq!(e.pos.line, 10, "{e}");
}

#[test]
fn missing_required_variable() {
    let e = one(&[(
        "compose.yaml",
        "services:\n  web:\n    image: \"nginx:${TAG:?set TAG to the release}\"\n",
    )]);
    assert_eq!((e.pos.line, e.path.as_str()), (3, "services.web.image"));
    assert!(
        e.message
            .contains("required variable TAG is missing a value: set TAG to the release"),
        "{e}"
    );
    assert!(e.hint.as_deref().unwrap_or("").contains(".env"), "{e}");
}

#[test]
fn every_error_of_a_file_at_once() {
    let d = Dir::new(&[(
        "compose.yaml",
        "services:\n  web:\n    imgae: nginx\n    ports: [\"99999:80\"]\n    stop_grace_period: soon\n  db:\n    image: pg\n    restart: sometimes\n    networks: [nope]\n",
    )]);
    let errs = d.errors(&["compose.yaml"]);
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "services.web.imgae",
        "services.web.ports[0]",
        "services.web.stop_grace_period",
        "services.db.restart",
        "services.db.networks.nope",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
}

#[test]
fn service_without_image_or_build() {
    let e = one(&[("compose.yaml", "services:\n  web:\n    command: [x]\n")]);
    assert!(
        e.message.contains("neither an image nor a build context"),
        "{e}"
    );
}

#[test]
fn container_name_with_several_replicas() {
    let e = one(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    container_name: web\n    deploy:\n      replicas: 3\n",
    )]);
    assert_eq!(e.path, "services.web.container_name", "{e}");
    assert!(e.message.contains("3 replicas"), "{e}");
    assert_eq!((e.pos.line, e.pos.col), (4, 5), "{e}");
    let ok = Dir::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    container_name: web\n    deploy:\n      replicas: 1\n",
    )]);
    assert!(
        ok.load(&["compose.yaml"]).is_ok(),
        "one replica may be named"
    );
}

#[test]
fn undefined_volume_secret_and_dependency() {
    let d = Dir::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: x\n    volumes: [data:/d]\n    secrets: [pw]\n    depends_on: [dbb]\n  db:\n    image: x\n",
    )]);
    let errs = d.errors(&["compose.yaml"]);
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let all = text.join("\n");
    assert!(all.contains("volume \"data\" is not defined"), "{all}");
    assert!(all.contains("secret \"pw\" is not defined"), "{all}");
    assert!(
        all.contains("service \"dbb\" is not defined") && all.contains("did you mean \"db\"?"),
        "{all}"
    );
}

#[test]
fn empty_file_and_not_a_mapping() {
    let d = Dir::new(&[("compose.yaml", "# nothing\n"), ("list.yaml", "- a\n- b\n")]);
    let e = d.errors(&["compose.yaml"]);
    assert!(e[0].message.contains("empty compose file"), "{e:?}");
    let e = d.errors(&["list.yaml"]);
    assert!(e[0].message.contains("must be a mapping"), "{e:?}");
}

#[test]
fn invalid_project_names() {
    let d = Dir::new(&[(
        "compose.yaml",
        "name: My_Project\nservices:\n  a:\n    image: x\n",
    )]);
    let e = d.errors(&["compose.yaml"]);
    assert!(
        e[0].message.contains("invalid project name \"My_Project\""),
        "{e:?}"
    );
    assert_eq!(e[0].pos.line, 1);
}

#[test]
fn no_file_found() {
    let d = Dir::new(&[("README", "x")]);
    let err = d.load(&[]).unwrap_err();
    assert!(matches!(err, compose::Error::NoFile { .. }));
    assert!(err.to_string().contains("tried compose.yaml"), "{err}");
}
