//! Replays the request corpus (`tests/requests/{valid,invalid}`) through the
//! pure HTTP parser, whole and split at every byte offset, and checks each
//! case against its JSON sidecar; and through the worker's real connection
//! cycle on scripted bytes (`worker::script`), checking that every split
//! delivery gives what the whole one gives. pytest replays the same files
//! against a live server (`tests/test_http_corpus.py`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use _rsgi::config::{Config, Overrides, Values};
use _rsgi::http::{parse_head, BodyDecoder, HttpError, Parsed, RequestHead};
use serde_json::Value;

fn corpus_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/requests").join(kind)
}

fn cases(kind: &str) -> Vec<(PathBuf, Vec<u8>, Value)> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(corpus_dir(kind)).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("http") {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        let sidecar: Value = serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        out.push((path, raw, sidecar));
    }
    out
}

/// The configuration a case's `settings` give, through the real config code.
fn config_for(sidecar: &Value) -> Config {
    let mut overrides = Overrides::new();
    if let Some(Value::Object(settings)) = sidecar.get("settings") {
        for (name, value) in settings {
            let setting = _rsgi::config::settings::find(name).unwrap_or_else(|| panic!("unknown setting {name}"));
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Array(a) => a.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>().join(","),
                other => other.to_string(),
            };
            overrides.insert(setting.key, vec![text]);
        }
    }
    Config::new("app".into(), Values::merge(&[&overrides]).unwrap()).unwrap()
}

/// What parsing one request produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    head: RequestHead,
    body: Vec<u8>,
    trailers: _rsgi::http::HeaderMap,
}

/// Cut points that deliver `len` bytes `step` at a time.
fn steps(len: usize, step: usize) -> Vec<usize> {
    (1..).map(|i| i * step).take_while(|&c| c < len).collect()
}

/// Parse requests from the start of `input` the way the I/O loop does:
/// head first, then the body; the bytes arrive in reads that end at `cuts`.
fn parse_all(input: &[u8], cfg: &Config, cuts: &[usize]) -> (Vec<Outcome>, Option<HttpError>) {
    let trusted = cfg.forwarded_allow.allows("127.0.0.1".parse().unwrap());
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0usize;
    let mut outcomes = Vec::new();
    let feed = |buf: &mut Vec<u8>, fed: &mut usize| -> bool {
        if *fed >= input.len() {
            return false;
        }
        let end = cuts.iter().copied().find(|&c| c > *fed).unwrap_or(input.len()).min(input.len());
        buf.extend_from_slice(&input[*fed..end]);
        *fed = end;
        true
    };
    loop {
        // The head.
        let head = loop {
            match parse_head(&buf, &cfg.limits, trusted) {
                Ok(Parsed::Complete(head, used)) => {
                    buf.drain(..used);
                    break head;
                }
                Ok(Parsed::Incomplete) => {
                    if !feed(&mut buf, &mut fed) {
                        return (outcomes, None);
                    }
                }
                Err(e) => return (outcomes, Some(e)),
            }
        };
        // The body.
        let mut body = Vec::new();
        let mut trailers = Vec::new();
        if let Some(mut decoder) = BodyDecoder::new(head.framing) {
            loop {
                match decoder.decode(&buf, &mut body, usize::MAX, &cfg.limits) {
                    Ok(d) => {
                        buf.drain(..d.consumed);
                        if d.done {
                            trailers = d.trailers;
                            break;
                        }
                        if !feed(&mut buf, &mut fed) {
                            return (outcomes, None);
                        }
                    }
                    Err(e) => return (outcomes, Some(e)),
                }
            }
        }
        outcomes.push(Outcome { head, body, trailers });
        if buf.is_empty() && fed >= input.len() {
            return (outcomes, None);
        }
    }
}

fn latin1(v: &Value) -> Vec<u8> {
    v.as_str().unwrap_or_default().chars().map(|c| c as u32 as u8).collect()
}

fn pairs(v: Option<&Value>) -> _rsgi::http::HeaderMap {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|p| (p[0].as_str().unwrap().to_owned().into(), latin1(&p[1]))).collect())
        .unwrap_or_default()
}

fn check_valid(path: &Path, outcomes: &[Outcome], expected: &[Value]) {
    assert_eq!(outcomes.len(), expected.len(), "{}: number of requests", path.display());
    for (got, want) in outcomes.iter().zip(expected) {
        let h = &got.head;
        let ctx = path.display();
        assert_eq!(h.method, want["method"].as_str().unwrap(), "{ctx}: method");
        assert_eq!(h.target, want["uri"].as_str().unwrap(), "{ctx}: uri");
        assert_eq!(h.path(), want["path"].as_str().unwrap(), "{ctx}: path");
        assert_eq!(h.query(), want["query"].as_str().unwrap(), "{ctx}: query");
        if let Some(f) = want.get("fragment") {
            assert_eq!(h.fragment(), f.as_str().unwrap(), "{ctx}: fragment");
        }
        let v = &want["version"];
        assert_eq!((h.version.major as u64, h.version.minor as u64), (v[0].as_u64().unwrap(), v[1].as_u64().unwrap()), "{ctx}: version");
        assert_eq!(h.headers, pairs(want.get("headers")), "{ctx}: headers");
        assert_eq!(got.body, latin1(&want["body"]), "{ctx}: body");
        if want.get("trailers").is_some() {
            assert_eq!(got.trailers, pairs(want.get("trailers")), "{ctx}: trailers");
        }
    }
}

#[test]
fn valid_corpus_whole_and_split() {
    let cases = cases("valid");
    assert!(cases.len() >= 30, "the valid corpus is missing");
    for (path, raw, sidecar) in &cases {
        let cfg = config_for(sidecar);
        let expected = sidecar["requests"].as_array().unwrap();
        for step in std::iter::once(raw.len().max(1)).chain(1..raw.len().min(64)) {
            let (outcomes, err) = parse_all(raw, &cfg, &steps(raw.len(), step));
            assert!(err.is_none(), "{} (step {step}): unexpected error {err:?}", path.display());
            check_valid(path, &outcomes, expected);
        }
        // Every split into two reads.
        for cut in 1..raw.len() {
            let (outcomes, err) = parse_all(raw, &cfg, &[cut]);
            assert!(err.is_none(), "{} (cut {cut}): {err:?}", path.display());
            check_valid(path, &outcomes, expected);
        }
    }
}

#[test]
fn invalid_corpus_whole_and_split() {
    let cases = cases("invalid");
    assert!(cases.len() >= 30, "the invalid corpus is missing");
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for (path, raw, sidecar) in &cases {
        let cfg = config_for(sidecar);
        let want = sidecar["status"].as_u64().unwrap() as u16;
        let before = sidecar.get("valid_before").and_then(Value::as_u64).unwrap_or(0) as usize;
        let splits = std::iter::once(Vec::new())
            .chain((1..raw.len().min(64)).map(|step| steps(raw.len(), step)))
            .chain((1..raw.len()).map(|cut| vec![cut]));
        for (step, cuts) in splits.enumerate() {
            let (outcomes, err) = parse_all(raw, &cfg, &cuts);
            let err = err.unwrap_or_else(|| panic!("{} (step {step}): accepted, expected {want}", path.display()));
            assert_eq!(err.status(), want, "{} (step {step}): {err}", path.display());
            assert_eq!(outcomes.len(), before, "{} (step {step}): valid requests before the bad one", path.display());
        }
        *statuses.entry(want).or_default() += 1;
    }
    for code in [400, 413, 414, 431, 501, 505] {
        assert!(statuses.contains_key(&code), "no invalid case answers {code}");
    }
}

/// Every case through the worker's connection cycle (`worker::script`):
/// the requests the app gets and the refusal match the sidecar, and a
/// delivery split in two anywhere, or byte by byte with the answers written
/// a byte at a time, gives the same requests, bytes out and end as one
/// whole delivery.
#[test]
fn corpus_through_the_connection_cycle() {
    use _rsgi::worker::script::{run, Setup};
    let _ = _rsgi::log::init(_rsgi::log::Level::Critical, "-");
    for kind in ["valid", "invalid"] {
        for (path, raw, sidecar) in &cases(kind) {
            let cfg = config_for(sidecar);
            let peer = "127.0.0.1".parse().unwrap();
            let setup = Setup {
                limits: cfg.limits.clone(),
                trusted: cfg.forwarded_allow.allows(peer),
                proxy: cfg.proxy_protocol,
                proxy_allowed: cfg.proxy_allow.allows(peer),
                eof: true,
            };
            let whole = run(raw, &[], &[], &setup);
            let name = path.display();
            if kind == "valid" {
                assert_eq!(whole.requests.len(), sidecar["requests"].as_array().unwrap().len(), "{name}");
            } else {
                let before = sidecar.get("valid_before").and_then(Value::as_u64).unwrap_or(0) as usize;
                assert_eq!(whole.requests.len(), before, "{name}: valid requests before the bad one");
                let status = format!("HTTP/1.1 {} ", sidecar["status"]);
                let found = whole.output.windows(status.len()).any(|w| w == status.as_bytes());
                assert!(found, "{name}: no {status:?} in {:?}", String::from_utf8_lossy(&whole.output));
            }
            for cut in 1..raw.len() {
                assert_eq!(run(raw, &[cut], &[], &setup), whole, "{name}: cut at {cut}");
            }
            let every: Vec<usize> = (1..raw.len()).collect();
            assert_eq!(run(raw, &every, &vec![1; 4096], &setup), whole, "{name}: byte by byte");
        }
    }
}
