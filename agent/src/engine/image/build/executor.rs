//! Running a build: read the Dockerfile and `.dockerignore`, plan the stages, run each
//! needed stage's instructions over its image state (metadata in the config, COPY /
//! ADD / WORKDIR as layers through the cache), write and tag the target's image.
//!
//! WORKDIR makes a layer only when the directory is missing from the image (it is then
//! created 0755, owned by root, with any missing parents); otherwise it changes the
//! config only. The clock is read here, once per new layer, for its history entry; a
//! cached layer keeps the time it was first made, so rebuilds give the same digests.

use super::cache::{Cache, Cached};
use super::copy::{self, CopySpec, clean};
use super::dockerfile::{self, Dockerfile, Instruction, ParseError, Stage};
use super::error::BuildError;
use super::inputs::{TmpDir, now, read_dockerfile, read_ignore};
use super::instruction::{Command, CommandLine, CopyArgs};
use super::layer::{self, Entries};
use super::metadata::{self, Applied, StageFlags};
use super::plan::{self, Plan, Source};
use super::run::{self, RunLimits, RunStep};
use super::scope::Scope;
use super::state::State;
use super::tree::{DirTree, ImageTree, Kind, Tree, read_text, resolve};
use super::users;
use super::{BuildEvent, BuildRequest, Built};
use crate::engine::image::digest::Digest;
use crate::engine::image::images::{Images, ImagesError};
use crate::engine::image::manifest::{Descriptor, OCI_LAYER_GZIP};
use crate::engine::image::reference::Reference;
use crate::engine::image::snapshot::Snapshots;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Build the image `req` describes from images in `images` (base images must be there
/// already: see [`super::base_images`]); tag it with every tag of the request.
pub fn build(
    images: &Images,
    snapshots: &Snapshots,
    req: &BuildRequest,
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<Built, BuildError> {
    if let Err(source) = fs::read_dir(&req.context) {
        return Err(BuildError::Context {
            path: req.context.clone(),
            source,
        });
    }
    let (file, text, ignore_candidates) = read_dockerfile(req)?;
    let df = dockerfile::parse(&text).map_err(|e| BuildError::at(&file, e))?;
    let plan = plan::plan(&df, &file, req.target.as_deref(), &req.build_args)?;
    if !plan.unused_args.is_empty() {
        progress(BuildEvent::UnusedBuildArgs {
            names: plan.unused_args.clone(),
        });
    }
    let context = DirTree {
        root: req.context.clone(),
        ignore: read_ignore(&ignore_candidates)?,
    };
    let mut b = Builder {
        images,
        snapshots,
        req,
        df: &df,
        file,
        plan: &plan,
        context,
        cache: Cache::open(images.root()),
        progress,
        step: 0,
        total: plan
            .needed
            .iter()
            .map(|s| 1 + df.stages[*s].instructions.len())
            .sum(),
        results: BTreeMap::new(),
    };
    for &s in &plan.needed {
        let state = b.stage(&df.stages[s])?;
        b.results.insert(s, state);
    }
    let mut state = b.results.remove(&plan.target).unwrap_or_default();
    if !req.labels.is_empty() {
        state.labels().extend(req.labels.clone());
    }
    let (manifest, config) = state.write(&images.content)?;
    for t in &req.tags {
        images.tag(t, &manifest)?;
        (b.progress)(BuildEvent::Tagged {
            reference: t.familiar(),
        });
    }
    Ok(Built { manifest, config })
}

struct Builder<'a> {
    images: &'a Images,
    snapshots: &'a Snapshots,
    req: &'a BuildRequest,
    df: &'a Dockerfile,
    file: String,
    plan: &'a Plan,
    context: DirTree,
    cache: Cache,
    progress: &'a mut dyn FnMut(BuildEvent),
    step: usize,
    total: usize,
    results: BTreeMap<usize, State>,
}

impl Builder<'_> {
    fn at(&self, line: usize, what: impl Into<String>) -> BuildError {
        BuildError::at(
            &self.file,
            ParseError {
                line,
                what: what.into(),
            },
        )
    }

    fn announce(&mut self, stage: &Stage, instruction: String) {
        self.step += 1;
        (self.progress)(BuildEvent::Step {
            stage: stage.label(),
            index: self.step,
            total: self.total,
            instruction,
        });
    }

    fn stage(&mut self, stage: &Stage) -> Result<State, BuildError> {
        let from = match &stage.name {
            Some(n) => format!("FROM {} AS {n}", stage.base),
            None => format!("FROM {}", stage.base),
        };
        self.announce(stage, from);
        let mut state = match &self.plan.bases[stage.index] {
            Source::Scratch => State::scratch(),
            Source::Stage(j) => self.results.get(j).cloned().unwrap_or_default(),
            Source::Image(r) => self.image(r, stage.line)?,
        };
        let mut scope = Scope::stage(
            &self.req.build_args,
            self.plan.globals.clone(),
            &state.env(),
            self.df.escape,
        );
        let mut flags = StageFlags::default();
        for ins in &stage.instructions {
            self.announce(stage, ins.text.clone());
            let applied =
                metadata::apply(&mut state, &mut scope, &mut flags, &ins.command, &ins.text)
                    .map_err(|what| self.at(ins.line, what))?;
            if applied == Applied::Done {
                continue;
            }
            match &ins.command {
                Command::Run(cmd) => self.run(&mut state, &scope, ins, cmd)?,
                Command::Copy(a) => self.copy(stage, &mut state, &scope, ins, a, false)?,
                Command::Add(a) => self.copy(stage, &mut state, &scope, ins, a, true)?,
                Command::Workdir(w) => self.workdir(&mut state, &scope, ins, w)?,
                _ => return Err(self.at(ins.line, "this instruction cannot appear here")),
            }
        }
        Ok(state)
    }

    /// The state of image `r` from the store.
    fn image(&self, r: &Reference, line: usize) -> Result<State, BuildError> {
        let manifest = match self.images.resolve(r) {
            Ok(m) => m,
            Err(ImagesError::NotFound { .. }) => {
                return Err(BuildError::MissingImage {
                    file: self.file.clone(),
                    line,
                    reference: r.familiar(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        State::from_image(&self.images.content, &manifest).map_err(|source| BuildError::BaseImage {
            file: self.file.clone(),
            line,
            reference: r.familiar(),
            source,
        })
    }

    /// The file system of `state`, read through its snapshot layers.
    fn view(&self, state: &State, line: usize) -> Result<ImageTree, BuildError> {
        let layers = self
            .snapshots
            .prepare_layers(
                &self.images.content,
                &state.layers,
                &state.config.rootfs.diff_ids,
            )
            .map_err(|source| BuildError::Snapshot {
                file: self.file.clone(),
                line,
                source,
            })?;
        Ok(ImageTree { layers })
    }

    fn copy(
        &mut self,
        stage: &Stage,
        state: &mut State,
        scope: &Scope,
        ins: &Instruction,
        args: &CopyArgs,
        add: bool,
    ) -> Result<(), BuildError> {
        let line = ins.line;
        let x = |w: &str| {
            let w = if args.json {
                // JSON strings are literal apart from variables.
                let e = self.df.escape;
                w.chars()
                    .flat_map(|c| {
                        if c == '"' || c == '\'' || c == e {
                            vec![e, c]
                        } else {
                            vec![c]
                        }
                    })
                    .collect()
            } else {
                w.to_owned()
            };
            scope.expand(&w).map_err(|e| self.at(line, e.to_string()))
        };
        let sources = args
            .sources
            .iter()
            .map(|s| x(s))
            .collect::<Result<Vec<_>, _>>()?;
        let dest = x(&args.dest)?;
        if let Some(url) = sources
            .iter()
            .find(|s| add && (s.contains("://") || s.starts_with("git@")))
        {
            return Err(self.at(
                line,
                format!("ADD {url}: fetching URLs is not supported; download it into the build context and ADD or COPY the file"),
            ));
        }
        let from = args.from.as_deref().map(|f| scope.expand(f)).transpose();
        let from = from.map_err(|e| self.at(line, e.to_string()))?;
        let (src_owner, place): (Option<ImageTree>, String) = match &from {
            None => (None, "the build context".into()),
            Some(word) => match plan::classify(self.df, stage.index, word, true, &self.file, line)?
            {
                Source::Stage(j) => {
                    let s = self.results.get(&j).cloned().unwrap_or_default();
                    (
                        Some(self.view(&s, line)?),
                        format!("stage {}", self.df.stages[j].label()),
                    )
                }
                Source::Image(r) => {
                    let s = self.image(&r, line)?;
                    (
                        Some(self.view(&s, line)?),
                        format!("image {}", r.familiar()),
                    )
                }
                Source::Scratch => (Some(ImageTree { layers: Vec::new() }), "scratch".into()),
            },
        };
        let src: &dyn Tree = match &src_owner {
            Some(t) => t,
            None => &self.context,
        };
        let dst = self.view(state, line)?;
        let chown = args.chown.as_deref().map(x).transpose()?;
        let owner = match &chown {
            Some(c) => Some(
                users::owner(&dst, c).map_err(|e| self.at(line, format!("--chown={c}: {e}")))?,
            ),
            None => None,
        };
        let chmod = match args.chmod.as_deref().map(x).transpose()? {
            Some(m) => Some(
                u32::from_str_radix(&m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        self.at(line, format!("--chmod={m}: not an octal mode like 0755"))
                    })?,
            ),
            None => None,
        };
        let tmp = TmpDir::new(self.images.root()).map_err(|source| BuildError::Context {
            path: self.images.root().join("build-tmp"),
            source,
        })?;
        let workdir = state.workdir();
        let spec = CopySpec {
            sources: &sources,
            dest: &dest,
            workdir: &workdir,
            owner,
            chmod,
            extract: add,
            scratch: &tmp.0,
        };
        let entries =
            copy::plan(src, &place, &dst, &spec).map_err(|e| self.at(line, e.to_string()))?;
        let desc = serde_json::json!({
            "from": from, "sources": sources, "dest": dest, "owner": owner, "chmod": chmod, "add": add,
        })
        .to_string();
        self.commit(state, ins, &desc, &entries)
    }

    fn workdir(
        &mut self,
        state: &mut State,
        scope: &Scope,
        ins: &Instruction,
        w: &str,
    ) -> Result<(), BuildError> {
        let line = ins.line;
        let w = scope.expand(w).map_err(|e| self.at(line, e.to_string()))?;
        if w.trim().is_empty() {
            return Err(self.at(line, "WORKDIR needs a path"));
        }
        let joined = Path::new(&state.workdir()).join(&w);
        let path = Path::new("/").join(clean(&joined));
        state.run().working_dir = Some(path.display().to_string());
        let dst = self.view(state, line)?;
        let not_dir = || {
            self.at(
                line,
                format!(
                    "WORKDIR {}: a file of that name is in the image",
                    path.display()
                ),
            )
        };
        let resolved = match resolve(&dst, &path, true) {
            Ok((_, Some(n))) if n.kind == Kind::Dir => {
                state.note(&ins.text);
                return Ok(());
            }
            Ok((_, Some(_))) => return Err(not_dir()),
            Ok((r, None)) => r,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Err(not_dir()),
            Err(source) => {
                return Err(BuildError::Source {
                    file: self.file.clone(),
                    line,
                    op: "resolve",
                    path,
                    source,
                });
            }
        };
        let entries = copy::mkdir(&dst, &resolved, Path::new("/nonexistent"))
            .map_err(|e| self.at(line, e.to_string()))?;
        let desc = format!("mkdir {}", resolved.display());
        self.commit(state, ins, &desc, &entries)
    }

    /// RUN `cmd` in a container over `state`, from the cache when it has the step.
    fn run(
        &mut self,
        state: &mut State,
        scope: &Scope,
        ins: &Instruction,
        cmd: &CommandLine,
    ) -> Result<(), BuildError> {
        let Some(env) = self.req.runtime.clone() else {
            return Err(BuildError::RunNeedsRuntime {
                file: self.file.clone(),
                line: ins.line,
            });
        };
        let args = match cmd {
            CommandLine::Exec(v) => v.clone(),
            CommandLine::Shell(text) => {
                let rc = state.config.config.clone().unwrap_or_default();
                let mut shell = rc
                    .shell
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
                shell.push(text.clone());
                shell
            }
        };
        if args.is_empty() {
            return Err(self.at(ins.line, "RUN needs a command"));
        }
        // ARG values are in the environment of RUN commands, under the stage's ENV.
        let mut vars = state.env();
        for (k, v) in scope.args() {
            if !vars
                .iter()
                .any(|e| e.split_once('=').is_some_and(|(key, _)| key == k))
            {
                vars.push(format!("{k}={v}"));
            }
        }
        // The limits a step ran under may change what it made (default limits keep
        // the key steps had before limits could be set).
        let limits = &self.req.limits;
        let mut key_text = format!("{}\nRUN\n{}\n{args:?}\n{vars:?}", state.digest(), ins.text);
        if *limits != RunLimits::default() {
            key_text.push_str(&format!("\n{:?}\n{:?}", limits.shm_size, limits.ulimits));
        }
        let key = Digest::of(key_text.as_bytes());
        let tree = self.view(state, ins.line)?;
        let text = |p: &str| read_text(&tree, p);
        let step = RunStep {
            file: &self.file,
            line: ins.line,
            args,
            env: vars,
            passwd: text("/etc/passwd"),
            group: text("/etc/group"),
            limits,
        };
        let (images, snapshots) = (self.images, self.snapshots);
        let snapshot = state.clone();
        let progress = &mut *self.progress;
        let make = &mut || run::execute(images, snapshots, &env, &snapshot, &step, progress);
        let file = self.file.clone();
        let cache = &self.cache;
        let no_cache = self.req.no_cache;
        let progress_done = commit_cached(cache, images, no_cache, &file, state, ins, &key, make)?;
        (self.progress)(progress_done);
        Ok(())
    }

    /// Add the layer of `entries` to `state`, from the cache when it has it.
    fn commit(
        &mut self,
        state: &mut State,
        ins: &Instruction,
        desc: &str,
        entries: &Entries,
    ) -> Result<(), BuildError> {
        let line = ins.line;
        let content = layer::content_digest(entries).map_err(|source| BuildError::Source {
            file: self.file.clone(),
            line,
            op: "read sources of",
            path: PathBuf::from(&ins.text),
            source,
        })?;
        let key =
            Digest::of(format!("{}\n{}\n{desc}\n{content}", state.digest(), ins.text).as_bytes());
        let store = &self.images.content;
        let file = self.file.clone();
        let make = &mut || {
            layer::write(store, entries).map_err(|source| BuildError::Layer {
                file: file.clone(),
                line,
                source,
            })
        };
        let event = commit_cached(
            &self.cache,
            self.images,
            self.req.no_cache,
            &self.file,
            state,
            ins,
            &key,
            make,
        )?;
        (self.progress)(event);
        Ok(())
    }
}

/// Add to `state` the layer cached under `key`, or the one `make` writes (then
/// cached); the event to report.
#[allow(clippy::too_many_arguments)]
fn commit_cached(
    cache: &Cache,
    images: &Images,
    no_cache: bool,
    file: &str,
    state: &mut State,
    ins: &Instruction,
    key: &Digest,
    make: &mut dyn FnMut() -> Result<layer::NewLayer, BuildError>,
) -> Result<BuildEvent, BuildError> {
    let store = &images.content;
    let cached = if no_cache {
        None
    } else {
        cache.get(key, store)?
    };
    let (c, fresh) = match cached {
        Some(c) => (c, false),
        None => {
            let l = make()?;
            let c = Cached {
                layer: l.digest.to_string(),
                size: l.size,
                diff_id: l.diff_id.to_string(),
                created: now(),
            };
            cache.put(key, c.clone())?;
            (c, true)
        }
    };
    let (Ok(digest), Ok(diff_id)) = (c.layer.parse::<Digest>(), c.diff_id.parse::<Digest>()) else {
        return Err(BuildError::at(
            file,
            ParseError {
                line: ins.line,
                what: "the build cache holds an invalid digest".into(),
            },
        ));
    };
    let desc = Descriptor::new(OCI_LAYER_GZIP, digest.clone(), c.size);
    state.add_layer(desc, diff_id, &ins.text, &c.created);
    Ok(if fresh {
        BuildEvent::Layer {
            digest: digest.to_string(),
            size: c.size,
        }
    } else {
        BuildEvent::Cached {
            digest: digest.to_string(),
        }
    })
}
