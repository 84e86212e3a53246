//! A Dockerfile parsed into global ARGs and stages of instructions, each with its line
//! number: parser directives (`# syntax=`, `# escape=`), comments, line continuations
//! and the forms of every instruction. Pure: text in, value or `line: what` out.

use super::instruction::{self, Command};

/// A parsed Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` unless `# escape=` says `` ` ``).
    pub escape: char,
    /// The `# syntax=` directive, kept for information (orch has one frontend).
    pub syntax: Option<String>,
    /// ARG instructions before the first FROM.
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

/// A build stage: FROM and the instructions up to the next FROM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// The `AS` name, lower case.
    pub name: Option<String>,
    /// The base image word (unsubstituted), `scratch` or a stage name.
    pub base: String,
    pub platform: Option<String>,
    /// The line of FROM.
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The name users know the stage by: its `AS` name or its index.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

/// One instruction and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction as written, continuations joined.
    pub text: String,
    pub command: Command,
}

/// A syntax error at a line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {what}")]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

/// Parse Dockerfile text.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, syntax, first) = directives(&lines)?;
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut i = first;
    while i < lines.len() {
        let start = i;
        let trimmed = lines[i].trim();
        i += 1;
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut logical = String::new();
        let mut cur = lines[start].trim_start().to_owned();
        loop {
            match continued(&cur, escape) {
                Some(body) => {
                    logical.push_str(body);
                    // Comment lines inside a continuation are dropped; blank lines too.
                    while i < lines.len() && {
                        let t = lines[i].trim();
                        t.is_empty() || t.starts_with('#')
                    } {
                        i += 1;
                    }
                    match lines.get(i) {
                        Some(next) => {
                            cur = (*next).to_owned();
                            i += 1;
                        }
                        None => break,
                    }
                }
                None => {
                    logical.push_str(&cur);
                    break;
                }
            }
        }
        let line = start + 1;
        let logical = logical.trim().to_owned();
        let (keyword, rest) = logical
            .split_once(char::is_whitespace)
            .unwrap_or((&logical, ""));
        let command =
            instruction::parse(keyword, rest, escape).map_err(|what| ParseError { line, what })?;
        let ins = Instruction {
            line,
            text: logical.clone(),
            command,
        };
        match (&ins.command, stages.last_mut()) {
            (
                Command::From {
                    image,
                    name,
                    platform,
                },
                _,
            ) => {
                if let Some(n) = name
                    && stages.iter().any(|s| s.name.as_ref() == Some(n))
                {
                    return Err(ParseError {
                        line,
                        what: format!("duplicate stage name {n:?}"),
                    });
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: name.clone(),
                    base: image.clone(),
                    platform: platform.clone(),
                    line,
                    instructions: Vec::new(),
                });
            }
            (Command::Arg(_), None) => global_args.push(ins),
            (_, None) => {
                return Err(ParseError {
                    line,
                    what: format!(
                        "{} before the first FROM: only ARG may come before FROM",
                        keyword.to_ascii_uppercase()
                    ),
                });
            }
            (_, Some(stage)) => stage.instructions.push(ins),
        }
    }
    if stages.is_empty() {
        return Err(ParseError {
            line: lines.len().max(1),
            what: "no FROM instruction: a Dockerfile needs at least one stage".into(),
        });
    }
    Ok(Dockerfile {
        escape,
        syntax,
        global_args,
        stages,
    })
}

/// The line without its trailing escape character, when it continues on the next line.
fn continued(line: &str, escape: char) -> Option<&str> {
    line.trim_end().strip_suffix(escape)
}

/// Parser directives at the top: escape char, syntax, index of the first other line.
fn directives(lines: &[&str]) -> Result<(char, Option<String>, usize), ParseError> {
    let mut escape = None;
    let mut syntax = None;
    for (i, l) in lines.iter().enumerate() {
        let Some(body) = l.trim().strip_prefix('#') else {
            return Ok((escape.unwrap_or('\\'), syntax, i));
        };
        let Some((key, value)) = body.split_once('=') else {
            return Ok((escape.unwrap_or('\\'), syntax, i));
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Ok((escape.unwrap_or('\\'), syntax, i));
        }
        let dup = |k: &str| ParseError {
            line: i + 1,
            what: format!("only one {k} parser directive can be used"),
        };
        match key.as_str() {
            "escape" => {
                if escape.is_some() {
                    return Err(dup("escape"));
                }
                escape = Some(match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError {
                            line: i + 1,
                            what: format!("invalid escape character {value:?}: must be \\ or `"),
                        });
                    }
                });
            }
            "syntax" => {
                if syntax.is_some() {
                    return Err(dup("syntax"));
                }
                syntax = Some(value.to_owned());
            }
            // Other directives (`check`) are accepted and ignored.
            _ => {}
        }
    }
    Ok((escape.unwrap_or('\\'), syntax, lines.len()))
}

#[cfg(test)]
mod tests {
    use super::super::instruction::{CommandLine, CopyArgs, Health};
    use super::*;

    fn cmds(text: &str) -> Vec<(usize, Command)> {
        let d = parse(text).unwrap();
        d.stages
            .into_iter()
            .flat_map(|s| s.instructions)
            .map(|i| (i.line, i.command))
            .collect()
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn stages_args_and_lines() {
        let d = parse(
            "# syntax=docker/dockerfile:1\nARG V=1\n\nFROM --platform=linux/amd64 base:$V AS Build\n# c\nRUN a \\\n  # inside\n  b\nfrom scratch\nCOPY --from=build /x /y\n",
        )
        .unwrap();
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.global_args.len(), 1);
        assert_eq!(d.stages.len(), 2);
        let s0 = &d.stages[0];
        assert_eq!(
            (s0.name.as_deref(), s0.base.as_str(), s0.line),
            (Some("build"), "base:$V", 4)
        );
        assert_eq!(s0.platform.as_deref(), Some("linux/amd64"));
        assert_eq!(s0.instructions[0].line, 6);
        assert_eq!(
            s0.instructions[0].command,
            Command::Run(CommandLine::Shell("a   b".into()))
        );
        assert_eq!(d.stages[1].instructions[0].line, 10);
    }

    #[test]
    fn forms() {
        let got = cmds(concat!(
            "FROM scratch\n",
            "CMD [\"a\", \"b\"]\n",
            "ENTRYPOINT run me\n",
            "CMD [not json\n",
            "ENV A=1 B=\"x y\"\n",
            "ENV LEGACY some value\n",
            "LABEL a=b\n",
            "COPY --chown=u:g --chmod=0755 [\"a b\", \"/d/\"]\n",
            "ADD x y /z/\n",
            "VOLUME [\"/v\", \"/w\"]\n",
            "VOLUME /a /b\n",
            "HEALTHCHECK --interval=1m30s --retries=3 CMD [\"check\"]\n",
            "HEALTHCHECK none\n",
            "SHELL [\"/bin/bash\", \"-c\"]\n",
            "ONBUILD copy . /app\n",
            "ARG X Y=2\n",
        ));
        let c: Vec<Command> = got.into_iter().map(|x| x.1).collect();
        assert_eq!(
            c[0],
            Command::Cmd(CommandLine::Exec(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            c[1],
            Command::Entrypoint(CommandLine::Shell("run me".into()))
        );
        assert_eq!(c[2], Command::Cmd(CommandLine::Shell("[not json".into())));
        assert_eq!(
            c[3],
            Command::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"x y\"".into())
            ])
        );
        assert_eq!(
            c[4],
            Command::Env(vec![("LEGACY".into(), "some value".into())])
        );
        assert_eq!(
            c[6],
            Command::Copy(CopyArgs {
                from: None,
                chown: Some("u:g".into()),
                chmod: Some("0755".into()),
                sources: vec!["a b".into()],
                dest: "/d/".into(),
                json: true,
            })
        );
        let Command::Add(add) = &c[7] else { panic!() };
        assert_eq!((add.sources.len(), add.dest.as_str()), (2, "/z/"));
        assert_eq!(c[8], Command::Volume(vec!["/v".into(), "/w".into()]));
        assert_eq!(c[9], Command::Volume(vec!["/a".into(), "/b".into()]));
        assert_eq!(
            c[10],
            Command::Healthcheck(Some(Health {
                test: CommandLine::Exec(vec!["check".into()]),
                interval: Some(90_000_000_000),
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: Some(3),
            }))
        );
        assert_eq!(c[11], Command::Healthcheck(None));
        assert_eq!(c[13], Command::OnBuild("COPY . /app".into()));
        assert_eq!(
            c[14],
            Command::Arg(vec![("X".into(), None), ("Y".into(), Some("2".into()))])
        );
    }

    #[test]
    fn escape_directive() {
        let d = parse("# escape=`\nFROM scratch\nWORKDIR C:\\x `\n  y\n").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(
            d.stages[0].instructions[0].command,
            Command::Workdir("C:\\x   y".into())
        );
        // A directive after a comment is only a comment.
        let d = parse("# hello\n# escape=`\nFROM scratch\n").unwrap();
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            (
                "FROM scratch\nFOO bar\n",
                "line 2: unknown instruction: FOO",
            ),
            ("RUN x\n", "line 1: RUN before the first FROM"),
            ("# nothing\n", "no FROM instruction"),
            ("FROM a b c d\n", "line 1: FROM takes"),
            (
                "FROM scratch\nCOPY onlyone\n",
                "line 2: COPY requires at least one source",
            ),
            (
                "FROM scratch\nCOPY --bogus=1 a b\n",
                "line 2: unknown flag --bogus",
            ),
            (
                "FROM scratch\nSHELL sh -c\n",
                "line 2: SHELL requires the JSON form",
            ),
            (
                "FROM scratch\nHEALTHCHECK --interval=abc CMD x\n",
                "not a duration",
            ),
            ("FROM scratch\nENV\n", "line 2: ENV requires"),
            ("FROM scratch\nENV novalue\n", "needs a value"),
            ("FROM a AS x\nFROM b AS X\n", "line 2: duplicate stage name"),
            ("# escape=x\nFROM a\n", "line 1: invalid escape"),
            (
                "FROM scratch\nONBUILD FROM x\n",
                "not allowed as an ONBUILD trigger",
            ),
            ("FROM scratch\nUSER a b\n", "line 2: USER takes exactly one"),
        ] {
            let e = err(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "(?s).{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_dockerfile_like_text(
            lines in proptest::collection::vec(
                "(FROM|RUN|COPY|ADD|ENV|ARG|LABEL|HEALTHCHECK|ONBUILD|SHELL|EXPOSE|#|) ?[-=a-z \\[\\]\"'`$\\\\{}:,]{0,30}",
                0..8,
            )
        ) {
            let _ = parse(&lines.join("\n"));
        }
    }
}
