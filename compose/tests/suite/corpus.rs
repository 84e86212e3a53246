//! Walks ../shared/compose-corpus: every awesome-compose and stacks file must load;
//! every compose-go fixture must load or fail as EXPECTATIONS.tsv says. Each file that
//! loads must also survive `orch config`: its rendered YAML loads back to the same
//! stack. Skips (with a message) where ../shared is absent.

use compose::render::{Format, render};
use compose::{Options, load};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("ORCH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("compose-corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: {} not found (set ORCH_SHARED to the shared/ directory)",
            dir.display()
        );
        None
    }
}

/// The environment the compose-go tests load their fixtures with.
fn environment() -> BTreeMap<String, String> {
    [
        ("HOME", "/home/foo"),
        ("BAR", "this is a secret"),
        ("QUX", "qux_from_environment"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn options(files: &[PathBuf]) -> Options {
    Options {
        working_dir: files[0].parent().unwrap().to_owned(),
        files: files.to_vec(),
        environment: environment(),
        ..Options::default()
    }
}

/// Load, and check that the rendered output loads back to the same stack.
fn load_and_round_trip(opts: &Options, tmp: &Path) -> Result<(), String> {
    let project = load(opts).map_err(|e| e.to_string())?;
    let text = render(&project.spec, Format::Yaml);
    let out = tmp.join("compose.yaml");
    std::fs::write(&out, &text).unwrap();
    let again = load(&Options {
        files: vec![out.clone()],
        working_dir: tmp.to_owned(),
        project_name: Some(project.spec.name.clone()),
        environment: BTreeMap::new(),
        skip_consistency: opts.skip_consistency,
        ..Options::default()
    })
    .map_err(|e| format!("rendered output does not load back: {e}\n{text}"))?;
    if again.spec != project.spec {
        return Err(format!(
            "rendered output loads back differently:\n{text}\n{:#?}\n{:#?}",
            project.spec, again.spec
        ));
    }
    let json = render(&project.spec, Format::Json);
    std::fs::write(&out, &json).unwrap();
    let from_json = load(&Options {
        files: vec![out],
        working_dir: tmp.to_owned(),
        skip_consistency: opts.skip_consistency,
        ..Options::default()
    })
    .map_err(|e| format!("JSON output does not load back: {e}"))?;
    if from_json.spec != project.spec {
        return Err("JSON output loads back differently".into());
    }
    Ok(())
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("orch-corpus-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn awesome_compose_and_stacks_all_load() {
    let Some(corpus) = corpus() else { return };
    let tmp = temp_dir("accept");
    let mut failures = Vec::new();
    let mut count = 0;
    for group in ["awesome-compose", "stacks"] {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus.join(group))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for dir in dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
                .collect();
            files.sort();
            for f in &files {
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                if name.contains(".override.") {
                    continue;
                }
                let mut set = vec![f.clone()];
                let over = dir.join(name.replace(".yml", ".override.yml"));
                if name.ends_with(".yml") && over.is_file() {
                    set.push(over);
                }
                count += 1;
                let mut opts = options(&set);
                // docker/cli's loader fixture covers every attribute and refers to
                // services, networks and volumes it does not define; the stack loader
                // test loads it without consistency checks.
                opts.skip_consistency = name == "cli__compose__loader__full-example.yml";
                if let Err(e) = load_and_round_trip(&opts, &tmp) {
                    failures.push(format!("{}:\n{e}", f.display()));
                }
            }
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
    assert!(count >= 60, "only {count} files found");
    assert!(
        failures.is_empty(),
        "{} of {count} files failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Files that compose-go only ever loads as a part of another load, and how we load them.
fn compose_go_load_set(root: &Path, rel: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let f = root.join(rel);
    let d = f.parent().unwrap().to_owned();
    match rel {
        // Override file: merged after its base.
        "cli/testdata/simple/compose-with-overrides.yaml" => {
            (vec![d.join("compose.yaml"), f], vec![])
        }
        // Needs PORT from the env files the Go test passes.
        "cli/testdata/env-file/compose-with-env-files.yaml" => {
            (vec![f], vec![d.join(".env"), d.join("override.env")])
        }
        // Extends-only target (a service without image, a null service): reached through
        // the files that extend it.
        "loader/testdata/extends/base.yaml" => (vec![d.join("nested.yaml")], vec![]),
        // Only reached through project-directory.yaml, whose project_directory points
        // its relative paths at testdata/subdir.
        "loader/testdata/include/dir/compose.yaml" => (
            vec![d.parent().unwrap().join("project-directory.yaml")],
            vec![],
        ),
        _ => (vec![f], vec![]),
    }
}

/// compose-go reaches `remote:X` through a test-only resource loader that maps it to
/// `loader/testdata/remote/X`: do the same by copying the remote tree with the prefix
/// rewritten to that directory.
fn remote_copy(root: &Path, rel: &str, tmp: &Path) -> PathBuf {
    let remote = root.join("loader/testdata/remote");
    let dest = tmp.join("remote");
    copy_rewritten(&remote, &dest, &format!("{}/", dest.display()));
    dest.join(rel.trim_start_matches("loader/testdata/remote/"))
}

fn copy_rewritten(from: &Path, to: &Path, prefix: &str) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_rewritten(&p, &target, prefix);
        } else {
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(target, text.replace("remote:", prefix)).unwrap();
        }
    }
}

fn schema_check(path: &Path) -> Result<(), String> {
    let file: std::sync::Arc<str> = std::sync::Arc::from(path.display().to_string());
    let text = std::fs::read_to_string(path).unwrap();
    let docs = compose::yaml::parse(&file, &text).map_err(|d| d.to_string())?;
    let mut out = Vec::new();
    for d in &docs {
        compose::schema::unknown_keys(d, compose::schema::Obj::Top, "", &mut out);
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("{out:?}"))
    }
}

#[test]
fn compose_go_fixtures_meet_expectations() {
    let Some(corpus) = corpus() else { return };
    let root = corpus.join("compose-go");
    let table = std::fs::read_to_string(root.join("EXPECTATIONS.tsv")).unwrap();
    let tmp = temp_dir("go");
    let mut failures = Vec::new();
    let mut rows = 0;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (rel, expect) = (cols[0], cols[1]);
        rows += 1;
        let is_yaml = rel.ends_with(".yaml") || rel.ends_with(".yml");
        let outcome: Result<(), String> = if rel == "schema/using-variables.yaml" {
            // Upstream only schema-checks this file before interpolation: every value is
            // `${VARIABLE}`, which no single value can satisfy once interpolated.
            schema_check(&root.join(rel))
        } else if is_yaml {
            let (mut files, env_files) = compose_go_load_set(&root, rel);
            if rel.starts_with("loader/testdata/remote/") {
                files = vec![remote_copy(&root, rel, &tmp)];
            }
            let mut opts = options(&files);
            opts.env_files = env_files;
            // The full example is loaded upstream without the consistency check: it
            // refers to services and networks it does not define.
            opts.skip_consistency = rel == "loader/full-example.yml";
            load_and_round_trip(&opts, &tmp)
        } else {
            let text = std::fs::read_to_string(root.join(rel)).unwrap();
            let env = environment();
            compose::dotenv::parse(&text, &|k| env.get(k).cloned())
                .map(drop)
                .map_err(|e| e.to_string())
        };
        match (expect, &outcome) {
            ("ok", Err(e)) => failures.push(format!("{rel}: expected to load, failed:\n{e}")),
            ("error", Ok(())) => failures.push(format!("{rel}: expected an error, loaded")),
            ("untested", r) => eprintln!(
                "{rel}: untested upstream; orch says {}",
                if r.is_ok() { "ok" } else { "error" }
            ),
            _ => {}
        }
    }
    std::fs::remove_dir_all(&tmp).ok();
    assert_eq!(rows, 70, "EXPECTATIONS.tsv rows");
    assert!(
        failures.is_empty(),
        "{} fixtures off:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
