//! The command line, `RSGI_CMD_ARGS` and `GUNICORN_CMD_ARGS`: turns argument
//! lists into raw per-setting overrides, with argparse's rules as gunicorn
//! uses them (options before or after APP, `--flag=value`, `-w4`, unique
//! prefixes of long flags). Also renders `--help` from the settings table.
//!
//! Pure: no I/O besides what the caller prints. Runs in the master.

use crate::config::settings::{self, Kind, SETTINGS};
use crate::config::{ConfigError, Overrides};

/// What to do besides reading the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Resolve the settings and go on.
    #[default]
    Run,
    /// `-h` / `--help` (wins over `--version`).
    Help,
    /// `-v` / `--version`.
    Version,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cli {
    /// The APP argument (`module:callable`), when given.
    pub app: Option<String>,
    /// Serve, or only print the help or the version.
    pub action: Action,
    /// Raw values per setting.
    pub overrides: Overrides,
}

fn usage(msg: impl Into<String>) -> ConfigError {
    ConfigError::Usage(msg.into())
}

/// Resolve a long option name, allowing unique prefixes as argparse does.
fn resolve_long(flag: &str) -> Result<&'static settings::Setting, ConfigError> {
    if let Some(s) = settings::by_flag(flag) {
        return Ok(s);
    }
    let matches: Vec<_> = settings::long_flags().filter(|(f, _)| f.starts_with(flag)).collect();
    let mut owners: Vec<&str> = matches.iter().map(|(_, s)| s.name).collect();
    owners.dedup();
    match owners.len() {
        1 => Ok(matches[0].1),
        0 => Err(usage(format!("unrecognized arguments: {flag}"))),
        _ => {
            let names: Vec<&str> = matches.iter().map(|(f, _)| *f).collect();
            Err(usage(format!("ambiguous option: {flag} could match {}", names.join(", "))))
        }
    }
}

/// Parse an argument list (without the program name): options and at most
/// one positional argument, the app. The command line and the
/// `GUNICORN_CMD_ARGS` / `RSGI_CMD_ARGS` variables are parsed alike (gunicorn
/// takes an app from the variable too).
pub fn parse(args: &[String]) -> Result<Cli, ConfigError> {
    let mut cli = Cli::default();
    let mut positional = Vec::new();
    let mut i = 0;
    let mut only_positional = false;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if only_positional || arg == "-" || !arg.starts_with('-') {
            positional.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            cli.action = Action::Help;
            continue;
        }
        if arg == "-v" || arg == "--version" {
            if cli.action != Action::Help {
                cli.action = Action::Version;
            }
            continue;
        }
        // Split off an attached value: --flag=value, -b=value, -w4.
        let (setting, attached) = if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            (resolve_long(&name)?, value)
        } else {
            let short = &arg[..arg.char_indices().nth(2).map(|(i, _)| i).unwrap_or(arg.len())];
            let setting = settings::by_flag(short).ok_or_else(|| usage(format!("unrecognized arguments: {arg}")))?;
            let rest = &arg[short.len()..];
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            (setting, if rest.is_empty() { None } else { Some(rest.to_owned()) })
        };
        let value = match setting.kind {
            Kind::Flag | Kind::FlagFalse => {
                if let Some(v) = attached {
                    return Err(usage(format!("argument {arg}: ignored explicit argument {v:?}")));
                }
                if setting.kind == Kind::FlagFalse { "false" } else { "true" }.to_owned()
            }
            Kind::OptionalChoice { choices, implied } => match attached {
                Some(v) => v,
                None => match args.get(i) {
                    Some(next) if choices.contains(&next.to_ascii_lowercase().as_str()) => {
                        i += 1;
                        next.clone()
                    }
                    _ => implied.to_owned(),
                },
            },
            _ => match attached {
                Some(v) => v,
                None => match args.get(i) {
                    Some(next) if !next.starts_with('-') || next.len() == 1 || is_negative_number(next) => {
                        i += 1;
                        next.clone()
                    }
                    _ => return Err(usage(format!("argument {}: expected one argument", setting.flags.join("/")))),
                },
            },
        };
        let entry = cli.overrides.entry(setting.key).or_default();
        if setting.kind != Kind::List {
            entry.clear();
        }
        entry.push(value);
    }
    if positional.len() > 1 {
        return Err(usage(format!("unrecognized arguments: {}", positional[1..].join(" "))));
    }
    cli.app = positional.pop();
    Ok(cli)
}

fn is_negative_number(s: &str) -> bool {
    s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Split an environment variable into arguments like a POSIX shell
/// (`shlex.split`): whitespace separates, quotes group, backslash escapes.
pub fn split_shell_words(s: &str) -> Result<Vec<String>, ConfigError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(usage("No closing quotation")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(usage("No closing quotation")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(usage("No closing quotation")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err(usage("No escaped character")),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The one-line usage summary.
pub const USAGE: &str = "usage: rsgi [OPTIONS] [APP_MODULE]";

/// `--help`, generated from the settings table.
pub fn help_text() -> String {
    let mut out = format!(
        "{USAGE}\n\nA pre-fork WSGI HTTP server written in Rust, with gunicorn's settings.\n\n\
         positional arguments:\n  APP_MODULE            the WSGI app as module:callable (module alone means module:application)\n\n\
         options:\n  -h, --help            show this help message and exit\n  -v, --version         show program's version number and exit\n"
    );
    let mut section = "";
    for s in SETTINGS.iter().filter(|s| !s.flags.is_empty()) {
        if s.section != section {
            section = s.section;
            out.push_str(&format!("\n{section}:\n"));
        }
        let flags = if s.meta.is_empty() {
            s.flags.join(", ")
        } else {
            s.flags.iter().map(|f| format!("{f} {}", s.meta)).collect::<Vec<_>>().join(", ")
        };
        let own = if s.rsgi_only { " [rsgi]" } else { "" };
        if flags.len() <= 20 {
            out.push_str(&format!("  {flags:<20}  {}{own}\n", s.help));
        } else {
            out.push_str(&format!("  {flags}\n                        {}{own}\n", s.help));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Key;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options_before_and_after_app() {
        let c = parse(&args("-w 4 app:wsgi --threads=2 -b 127.0.0.1:1 --bind unix:/s -t5")).unwrap();
        assert_eq!(c.app.as_deref(), Some("app:wsgi"));
        assert_eq!(c.overrides[&Key::Workers], vec!["4"]);
        assert_eq!(c.overrides[&Key::Threads], vec!["2"]);
        assert_eq!(c.overrides[&Key::Timeout], vec!["5"]);
        assert_eq!(c.overrides[&Key::Bind], vec!["127.0.0.1:1", "unix:/s"]);
    }

    #[test]
    fn flags_and_optional_values() {
        let c = parse(&args("--strip-header-spaces --proxy-protocol app")).unwrap();
        assert_eq!(c.overrides[&Key::StripHeaderSpaces], vec!["true"]);
        assert_eq!(c.overrides[&Key::ProxyProtocol], vec!["auto"]);
        assert_eq!(c.app.as_deref(), Some("app"));
        let c = parse(&args("--proxy-protocol v2 app")).unwrap();
        assert_eq!(c.overrides[&Key::ProxyProtocol], vec!["v2"]);
        assert!(parse(&args("--strip-header-spaces=1")).is_err());
    }

    #[test]
    fn prefixes_and_errors() {
        let c = parse(&args("--thr 3 --keep 9 a")).unwrap();
        assert_eq!(c.overrides[&Key::Threads], vec!["3"]);
        assert!(matches!(parse(&args("--work 3 a")), Err(ConfigError::Usage(_))));
        assert_eq!(c.overrides[&Key::Keepalive], vec!["9"]);
        assert!(matches!(parse(&args("--nope a")), Err(ConfigError::Usage(_))));
        assert!(matches!(parse(&args("--limit-request a")), Err(ConfigError::Usage(_))));
        assert!(matches!(parse(&args("a b")), Err(ConfigError::Usage(_))));
        assert!(matches!(parse(&args("-w")), Err(ConfigError::Usage(_))));
        assert_eq!(parse(&args("app")).unwrap().app.as_deref(), Some("app"));
        assert_eq!(parse(&args("--version")).unwrap().action, Action::Version);
        assert_eq!(parse(&args("-h")).unwrap().action, Action::Help);
        assert_eq!(parse(&args("-h -v")).unwrap().action, Action::Help);
        assert_eq!(parse(&args("-v --help")).unwrap().action, Action::Help);
        assert_eq!(parse(&args("app:x")).unwrap().action, Action::Run);
    }

    #[test]
    fn shell_words() {
        assert_eq!(split_shell_words(r#"-w 3  --bind "a b" 'c d' e\ f"#).unwrap(), vec!["-w", "3", "--bind", "a b", "c d", "e f"]);
        assert!(split_shell_words("'open").is_err());
        assert_eq!(split_shell_words("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn help_lists_every_flag() {
        let h = help_text();
        for s in SETTINGS {
            for f in s.flags {
                assert!(h.contains(f), "{f} missing from --help");
            }
        }
    }
}
