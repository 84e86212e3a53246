//! Which stages a build needs and which images it starts from: the target stage and,
//! transitively, the stages its FROM and `COPY --from` name. Pure, so the daemon can
//! pull the base images ([`base_images`]) before it builds.

use super::dockerfile::{Dockerfile, ParseError, Stage};
use super::error::BuildError;
use super::instruction::Command;
use super::scope::Scope;
use crate::engine::image::reference::Reference;
use std::collections::{BTreeMap, BTreeSet};

/// What a stage starts from or a `COPY --from` copies from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    Image(Reference),
}

/// The stages to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The index of the stage that becomes the image.
    pub target: usize,
    /// Stages to build, target included, in Dockerfile order.
    pub needed: BTreeSet<usize>,
    /// Values of the global ARGs (FROM lines and `ARG name` in stages read them).
    pub globals: BTreeMap<String, String>,
    /// What each stage starts from (every stage, needed or not).
    pub bases: Vec<Source>,
    /// Images `COPY --from` reads, by stage.
    pub copy_images: BTreeMap<usize, Vec<Reference>>,
    /// Build args no ARG of the needed stages declares.
    pub unused_args: Vec<String>,
}

/// Plan the build of `target` (the last stage when `None`).
pub fn plan(
    df: &Dockerfile,
    file: &str,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Result<Plan, BuildError> {
    let at = |line, what: String| BuildError::at(file, ParseError { line, what });
    let mut global = Scope::global(build_args, df.escape);
    for ins in &df.global_args {
        if let Command::Arg(decls) = &ins.command {
            for (name, default) in decls {
                global
                    .declare(name, default.as_deref())
                    .map_err(|e| at(ins.line, e.to_string()))?;
            }
        }
    }
    let mut used = global.used.clone();
    let globals = global.args();
    let mut bases = Vec::new();
    let mut deps: Vec<BTreeSet<usize>> = Vec::new();
    let mut copy_images = BTreeMap::new();
    let mut stage_used = Vec::new();
    for stage in &df.stages {
        if let Some(p) = &stage.platform {
            let p = global
                .expand(p)
                .map_err(|e| at(stage.line, e.to_string()))?;
            if p != "linux/amd64" {
                return Err(at(
                    stage.line,
                    format!("platform {p:?}: orch builds linux/amd64 images only"),
                ));
            }
        }
        let word = global
            .expand(&stage.base)
            .map_err(|e| at(stage.line, e.to_string()))?;
        let base = classify(df, stage.index, &word, false, file, stage.line)?;
        let mut d = BTreeSet::new();
        if let Source::Stage(j) = base {
            d.insert(j);
        }
        let mut images = Vec::new();
        let mut scope = Scope::stage(build_args, globals.clone(), &[], df.escape);
        for ins in &stage.instructions {
            let err = |e: super::words::WordError| at(ins.line, e.to_string());
            match &ins.command {
                Command::Arg(decls) => {
                    for (name, default) in decls {
                        scope.declare(name, default.as_deref()).map_err(err)?;
                    }
                }
                Command::Env(pairs) => {
                    for (k, v) in pairs {
                        let (k, v) = (scope.expand(k).map_err(err)?, scope.expand(v).map_err(err)?);
                        scope.set_env(&k, &v);
                    }
                }
                Command::Copy(c) => {
                    if let Some(from) = &c.from {
                        let word = scope.expand(from).map_err(err)?;
                        match classify(df, stage.index, &word, true, file, ins.line)? {
                            Source::Stage(j) => {
                                d.insert(j);
                            }
                            Source::Image(r) => images.push(r),
                            Source::Scratch => {}
                        }
                    }
                }
                _ => {}
            }
        }
        stage_used.push(scope.used);
        copy_images.insert(stage.index, images);
        bases.push(base);
        deps.push(d);
    }
    let target = match target {
        None => df.stages.len() - 1,
        Some(t) => find_stage(&df.stages, t).ok_or_else(|| BuildError::UnknownTarget {
            target: t.to_owned(),
            stages: df
                .stages
                .iter()
                .map(|s| match &s.name {
                    Some(n) => n.clone(),
                    None => format!("#{} (unnamed, line {})", s.index, s.line),
                })
                .collect::<Vec<_>>()
                .join(", "),
        })?,
    };
    let mut needed = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(s) = todo.pop() {
        if needed.insert(s) {
            todo.extend(deps[s].iter().copied());
        }
    }
    copy_images.retain(|s, _| needed.contains(s));
    for s in &needed {
        used.extend(stage_used[*s].iter().cloned());
    }
    let unused_args = build_args
        .keys()
        .filter(|k| !used.contains(*k))
        .cloned()
        .collect();
    Ok(Plan {
        target,
        needed,
        globals,
        bases,
        copy_images,
        unused_args,
    })
}

/// The stage called `name` (case-insensitive).
pub fn find_stage(stages: &[Stage], name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    stages
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
}

/// What `word` (substituted) names, seen from stage `current`: an earlier stage by name
/// (or by index when `index_ok`, for `COPY --from`), `scratch`, or an image.
pub fn classify(
    df: &Dockerfile,
    current: usize,
    word: &str,
    index_ok: bool,
    file: &str,
    line: usize,
) -> Result<Source, BuildError> {
    let at = |what: String| BuildError::at(file, ParseError { line, what });
    if word.is_empty() {
        return Err(at("empty image or stage name".into()));
    }
    if index_ok && word.bytes().all(|b| b.is_ascii_digit()) {
        return match word.parse::<usize>() {
            Ok(n) if n < current => Ok(Source::Stage(n)),
            _ => Err(at(format!(
                "--from={word}: stage index must name an earlier stage (0..{current})"
            ))),
        };
    }
    if word.eq_ignore_ascii_case("scratch") {
        return Ok(Source::Scratch);
    }
    if let Some(j) = find_stage(&df.stages, word) {
        if j < current {
            return Ok(Source::Stage(j));
        }
        if index_ok {
            return Err(at(format!(
                "--from={word}: stage {word} is not defined before this stage"
            )));
        }
    }
    word.parse::<Reference>()
        .map(Source::Image)
        .map_err(|source| BuildError::Reference {
            file: file.to_owned(),
            line,
            source,
        })
}

/// The images a build of `target` starts from or copies from, to pull before
/// [`super::build`]: parse `dockerfile`, plan, list (deduplicated, in order).
pub fn base_images(
    dockerfile: &str,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<Reference>, BuildError> {
    let file = "Dockerfile";
    let df = super::dockerfile::parse(dockerfile).map_err(|e| BuildError::at(file, e))?;
    let p = plan(&df, file, target, build_args)?;
    let mut out: Vec<Reference> = Vec::new();
    for s in &p.needed {
        let mut refs: Vec<Reference> = Vec::new();
        if let Source::Image(r) = &p.bases[*s] {
            refs.push(r.clone());
        }
        refs.extend(p.copy_images.get(s).cloned().unwrap_or_default());
        for r in refs {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DF: &str = "ARG BASE=alpine:3.20\nARG TAG\nFROM $BASE AS tools\nFROM busybox:${TAG:-1.36} AS build\nARG FROM_IMG=nginx\nCOPY --from=tools /a /a\nCOPY --from=$FROM_IMG /b /b\nFROM scratch AS final\nCOPY --from=build /c /c\nFROM debian AS other\nCOPY --from=0 /d /d\n";

    fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    fn names(v: Vec<Reference>) -> Vec<String> {
        v.iter().map(Reference::familiar).collect()
    }

    #[test]
    fn base_images_follow_the_target() {
        assert_eq!(
            names(base_images(DF, Some("final"), &args(&[])).unwrap()),
            ["alpine:3.20", "busybox:1.36", "nginx:latest"]
        );
        assert_eq!(
            names(
                base_images(
                    DF,
                    Some("FINAL"),
                    &args(&[("TAG", "1.37"), ("FROM_IMG", "redis")])
                )
                .unwrap()
            ),
            ["alpine:3.20", "busybox:1.37", "redis:latest"]
        );
        assert_eq!(
            names(base_images(DF, None, &args(&[])).unwrap()),
            ["alpine:3.20", "debian:latest"]
        );
        let df = super::super::dockerfile::parse(DF).unwrap();
        let p = plan(&df, "Dockerfile", Some("tools"), &args(&[("NOPE", "1")])).unwrap();
        assert_eq!(p.needed, [0].into());
        assert_eq!(p.unused_args, ["NOPE"]);
    }

    #[test]
    fn bad_targets_and_references() {
        let e = base_images(DF, Some("nope"), &args(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"nope\" not found") && e.contains("tools, build, final, other"),
            "{e}"
        );
        let e = base_images("FROM scratch\nCOPY --from=3 /a /b\n", None, &args(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("Dockerfile:2: --from=3"), "{e}");
        let e = base_images("FROM Not_Valid:\n", None, &args(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Dockerfile:1: invalid image reference"),
            "{e}"
        );
        let e = base_images("FROM --platform=linux/arm64 a\n", None, &args(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux/amd64 images only"), "{e}");
    }
}
