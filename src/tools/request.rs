//! The requests `sluice client` (and `sluice bench`) send, as the user
//! writes them, with wrk's flag names where wrk has one: headers (`-H`), the
//! method, a body, and for the client several URLs or paths taken in turn.
//! Everything is checked and serialised once, at start ([`Request`] bytes);
//! nothing is built per request.

use crate::app::Request;
use crate::app::http::RequestSpec;
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::sync::Arc;

/// Request options both `sluice client` and `sluice bench` take.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RequestArgs {
    /// A request header, "Name: value" (repeatable, as wrk's -H). One named
    /// Host, User-Agent or Connection replaces sluice's own (Host: from the
    /// URL; Connection: keep-alive, or close on a connection's last request
    /// when the server is to close first).
    #[arg(
        short = 'H',
        long = "header",
        value_name = "NAME: VALUE",
        help_heading = "Requests"
    )]
    pub headers: Vec<String>,
    /// The request method (default GET, or POST with a body). Responses to
    /// HEAD are read without a body.
    #[arg(long, value_name = "METHOD", help_heading = "Requests")]
    pub method: Option<String>,
    /// A request body from a file, sent with its Content-Length.
    #[arg(long, value_name = "FILE", help_heading = "Requests")]
    pub body_file: Option<String>,
}

/// Request options of `sluice client` alone (`sluice bench --body` is its
/// server's response size).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientRequestArgs {
    /// URLs or paths to request in turn, one per line (after any on the
    /// command line; blank lines and lines starting with # are skipped).
    #[arg(long, value_name = "FILE", help_heading = "Requests")]
    pub urls: Option<String>,
    /// A request body, as given, sent with its Content-Length.
    #[arg(
        long,
        value_name = "STR",
        conflicts_with = "body_file",
        help_heading = "Requests"
    )]
    pub body: Option<String>,
}

/// Where the client's requests go and what they ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub addr: SocketAddr,
    /// The Host header's value: the first URL's host[:port] as written.
    pub host: String,
    /// Paths in turn (at least one).
    pub paths: Vec<String>,
    /// What the report calls the target.
    pub label: String,
}

/// The client's URLs, from the command line and then `--urls FILE`: each
/// `http://IP[:PORT][/PATH]`, `IP:PORT` (IPv6 in brackets: `[::1]:80`), or a path (`/x`, on the first
/// URL's host). All must name one host:port.
pub fn targets(given: &[String], file: Option<&str>) -> anyhow::Result<Targets> {
    let mut all: Vec<String> = given.to_vec();
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).with_context(|| format!("--urls {f}"))?;
        let before = all.len();
        all.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
        if all.len() == before {
            bail!("--urls {f}: no URLs in it (one per line)");
        }
    }
    if all.len() > crate::app::MAX_REQUEST_LIST {
        bail!(
            "{} URLs: at most {} (each connection keeps its request's place in 16 bits)",
            all.len(),
            crate::app::MAX_REQUEST_LIST
        );
    }
    let mut first: Option<(SocketAddr, String, &str)> = None;
    let mut paths = Vec::with_capacity(all.len());
    for u in &all {
        if u.starts_with('/') {
            paths.push(u.clone());
            continue;
        }
        let t = super::client::parse_target(u)?;
        let (addr, path) = (t.addr, t.path.clone());
        match &first {
            None => first = Some((addr, authority(u, &t), u)),
            Some((a, _, f)) if *a != addr => bail!(
                "all URLs must share one host:port: {u} is {addr}, {f} is {a} (run one sluice client per server)"
            ),
            Some(_) => {}
        }
        paths.push(path);
    }
    let Some((addr, host, _)) = first else {
        bail!("no URL: give one as http://IP[:PORT][/PATH] (paths like /x take its host)");
    };
    for p in &paths {
        if let Some(c) = p.bytes().find(|&c| c <= b' ' || c == 0x7f) {
            bail!(
                "bad path {p:?}: byte 0x{c:02x} cannot be sent in a request line (percent-encode it, e.g. %20)"
            );
        }
    }
    let label = match all.len() {
        1 => all[0].clone(),
        n => format!("{} (+{} more in turn)", all[0], n - 1),
    };
    Ok(Targets {
        addr,
        host,
        paths,
        label,
    })
}

/// The Host header for a URL: its host[:port] as written (`http://` form),
/// or for `IP:PORT` the address, without the port if it is 80.
fn authority(url: &str, t: &super::client::Target) -> String {
    if let Some(rest) = url.strip_prefix("http://") {
        return rest.split('/').next().unwrap_or(rest).to_string();
    }
    // HOST:PORT: the name as given (as wrk sends it), else the address (an
    // IPv6 one in brackets, RFC 9110 7.2 / RFC 3986 3.2.2).
    let host = t.host.clone().unwrap_or_else(|| match t.addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    });
    if t.addr.port() == 80 {
        host
    } else {
        format!("{host}:{}", t.addr.port())
    }
}

/// A header as given to -H: "Name: value" → (name, value); the name must be
/// a token (RFC 9110 5.6.2), the value one line.
pub fn parse_header(h: &str) -> anyhow::Result<(String, String)> {
    let Some((name, value)) = h.split_once(':') else {
        bail!("-H {h:?}: write a header as \"Name: value\"");
    };
    if !is_token(name) {
        bail!(
            "-H {h:?}: {name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~, no spaces)"
        );
    }
    if value.contains(['\r', '\n', '\0']) {
        bail!("-H {h:?}: a header value is one line");
    }
    if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
    {
        bail!(
            "-H {name}: sluice sends Content-Length itself, from --body or --body-file (and no chunked bodies)"
        );
    }
    Ok((name.to_string(), value.trim().to_string()))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// The requests for `paths` on `host`, in turn: each as a connection's
/// last request too (`Connection: close` when `server_closes`).
/// `body_inline` is the client's `--body`; `min_len` pads (--request-bytes).
pub fn build(
    args: &RequestArgs,
    body_inline: Option<&str>,
    host: &str,
    paths: &[String],
    server_closes: bool,
    min_len: usize,
) -> anyhow::Result<Arc<[Request]>> {
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body: Option<Vec<u8>> = match (&args.body_file, body_inline) {
        (Some(f), _) => Some(std::fs::read(f).with_context(|| format!("--body-file {f}"))?),
        (None, Some(b)) => Some(b.as_bytes().to_vec()),
        (None, None) => None,
    };
    let method = match &args.method {
        Some(m) if !is_token(m) => {
            bail!("--method {m:?}: not a method name (e.g. GET, POST, HEAD)")
        }
        Some(m) => m.as_str(),
        None if body.is_some() => "POST",
        None => "GET",
    };
    if paths.is_empty() {
        bail!("no path to request");
    }
    Ok(paths
        .iter()
        .map(|path| {
            let spec = RequestSpec {
                method,
                host,
                path,
                headers: &headers,
                body: body.as_deref(),
                close: false,
                min_len,
            };
            let last = RequestSpec {
                close: server_closes,
                ..spec
            };
            Request::new(spec.build(), last.build())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn urls_share_one_host_port() {
        let t = targets(&s(&["http://10.0.0.1:8080/a", "/b", "10.0.0.1:8080"]), None).unwrap();
        assert_eq!(t.addr.to_string(), "10.0.0.1:8080");
        assert_eq!(t.host, "10.0.0.1:8080");
        assert_eq!(t.paths, s(&["/a", "/b", "/"]));
        assert_eq!(t.label, "http://10.0.0.1:8080/a (+2 more in turn)");
        // A path first takes the host of the URL after it.
        let t = targets(&s(&["/x", "http://10.0.0.1/"]), None).unwrap();
        assert_eq!((t.host.as_str(), t.paths.len()), ("10.0.0.1", 2));
        let e = targets(&s(&["http://10.0.0.1/", "http://10.0.0.2/"]), None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("all URLs must share one host:port"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = targets(&s(&["http://10.0.0.1/", "http://10.0.0.1:81/"]), None).unwrap_err();
        assert!(e.to_string().contains("10.0.0.1:81"), "{e}");
        assert!(targets(&s(&["/a"]), None).is_err(), "no host");
        assert!(targets(&s(&["http://10.0.0.1/a b"]), None).is_err());
    }

    /// IPv6 targets: the Host header carries the literal in brackets (RFC
    /// 9110 7.2, RFC 3986 3.2.2), as written in a URL, built for HOST:PORT.
    #[test]
    fn ipv6_urls_and_their_host_header() {
        let t = targets(&s(&["http://[::1]:8080/a", "/b", "[::1]:8080"]), None).unwrap();
        assert_eq!(t.addr, "[::1]:8080".parse().unwrap());
        assert_eq!(t.host, "[::1]:8080");
        assert_eq!(t.paths, s(&["/a", "/b", "/"]));
        let t = targets(&s(&["http://[2001:db8::1]/"]), None).unwrap();
        assert_eq!((t.host.as_str(), t.addr.port()), ("[2001:db8::1]", 80));
        assert_eq!(
            targets(&s(&["[2001:db8::1]:80"]), None).unwrap().host,
            "[2001:db8::1]"
        );
        assert_eq!(
            targets(&s(&["[2001:db8::1]:81"]), None).unwrap().host,
            "[2001:db8::1]:81"
        );
        let e = targets(&s(&["http://[::1]:80/", "http://127.0.0.1:80/"]), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("all URLs must share one host:port"),
            "{e}"
        );
        let r = build(&RequestArgs::default(), None, &t.host, &t.paths, false, 0).unwrap();
        assert!(
            text(&r[0].bytes).contains("\r\nHost: [2001:db8::1]\r\n"),
            "{}",
            text(&r[0].bytes)
        );
    }

    #[test]
    fn urls_from_a_file() {
        let dir = std::env::temp_dir().join(format!("sluice-urls-{}", std::process::id()));
        std::fs::write(&dir, "# paths\nhttp://10.0.0.1/one\n\n  /two  \n/three\n").unwrap();
        let f = dir.to_str().unwrap();
        let t = targets(&[], Some(f)).unwrap();
        assert_eq!(t.paths, s(&["/one", "/two", "/three"]));
        let t = targets(&s(&["http://10.0.0.1/zero"]), Some(f)).unwrap();
        assert_eq!(t.paths, s(&["/zero", "/one", "/two", "/three"]));
        std::fs::write(&dir, "# nothing\n").unwrap();
        assert!(targets(&[], Some(f)).is_err());
        std::fs::remove_file(&dir).unwrap();
        assert!(targets(&[], Some(f)).is_err(), "missing file");
    }

    /// A connection keeps its request's place in 16 bits: a longer list is
    /// refused, not wrapped.
    #[test]
    fn at_most_max_request_list_urls() {
        let max = crate::app::MAX_REQUEST_LIST;
        let mut given = vec!["http://10.0.0.1/".to_string()];
        given.extend((1..max).map(|i| format!("/{i}")));
        assert_eq!(targets(&given, None).unwrap().paths.len(), max);
        given.push("/one-too-many".into());
        let e = targets(&given, None).unwrap_err().to_string();
        assert!(e.contains("at most 65536"), "{e}");
    }

    #[test]
    fn headers_are_checked() {
        assert_eq!(
            parse_header("X-Test:  a b ").unwrap(),
            ("X-Test".into(), "a b".into())
        );
        assert_eq!(parse_header("Host:h:1").unwrap().1, "h:1");
        for bad in [
            "NoColon",
            ": v",
            "Bad Name: v",
            "X: a\r\nY: b",
            "Content-Length: 3",
        ] {
            assert!(parse_header(bad).is_err(), "{bad:?}");
        }
    }

    fn text(r: &[u8]) -> String {
        String::from_utf8(r.to_vec()).unwrap()
    }

    #[test]
    fn requests_as_written() {
        let args = RequestArgs {
            headers: s(&["X-Sluice: yes", "host: other", "Accept-Encoding: gzip"]),
            method: Some("PUT".into()),
            body_file: None,
        };
        let r = build(&args, Some("hello"), "10.0.0.1", &s(&["/a", "/b"]), true, 0).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            text(&r[0].bytes),
            "PUT /a HTTP/1.1\r\nUser-Agent: sluice\r\nX-Sluice: yes\r\nhost: other\r\n\
             Accept-Encoding: gzip\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello"
        );
        assert!(text(&r[1].last).starts_with("PUT /b HTTP/1.1\r\n"));
        assert!(text(&r[1].last).contains("\r\nConnection: close\r\n"));
        assert!(!r[0].head);
        // The server's framer reads each as one request with its body.
        for req in r.iter() {
            for bytes in [&req.bytes, &req.last] {
                let mut f = crate::app::http::Framer::new();
                let mut n = Vec::new();
                f.feed(bytes, |m| n.push(m.body_len)).unwrap();
                assert_eq!(n, vec![5]);
            }
        }
    }

    #[test]
    fn method_and_body_defaults() {
        let none = RequestArgs::default();
        let r = build(&none, None, "h", &s(&["/"]), false, 0).unwrap();
        assert_eq!(
            &r[0].bytes[..],
            &crate::app::http::request("h", "/", false)[..]
        );
        assert_eq!(
            &r[0].last[..],
            &r[0].bytes[..],
            "the client closes: no close asked"
        );
        let r = build(&none, Some(""), "h", &s(&["/"]), false, 0).unwrap();
        assert!(text(&r[0].bytes).starts_with("POST / HTTP/1.1\r\n"));
        assert!(text(&r[0].bytes).ends_with("Content-Length: 0\r\n\r\n"));
        let head = RequestArgs {
            method: Some("HEAD".into()),
            ..RequestArgs::default()
        };
        assert!(build(&head, None, "h", &s(&["/"]), false, 0).unwrap()[0].head);
        let bad = RequestArgs {
            method: Some("GE T".into()),
            ..RequestArgs::default()
        };
        assert!(build(&bad, None, "h", &s(&["/"]), false, 0).is_err());
        // A user's Connection header is sent as given, last request too.
        let conn = RequestArgs {
            headers: s(&["Connection: close"]),
            ..RequestArgs::default()
        };
        let r = build(&conn, None, "h", &s(&["/"]), false, 0).unwrap();
        assert_eq!(text(&r[0].bytes).matches("Connection:").count(), 1);
        assert!(text(&r[0].bytes).contains("Connection: close\r\n"));
        // Padding counts the body.
        let r = build(&none, Some("0123456789"), "h", &s(&["/"]), false, 300).unwrap();
        assert_eq!(r[0].bytes.len(), 300);
        assert!(text(&r[0].bytes).ends_with("\r\n\r\n0123456789"));
    }

    #[test]
    fn body_from_a_file() {
        let path = std::env::temp_dir().join(format!("sluice-body-{}", std::process::id()));
        std::fs::write(&path, [0u8, 1, 2, 255]).unwrap();
        let args = RequestArgs {
            body_file: Some(path.to_str().unwrap().into()),
            ..RequestArgs::default()
        };
        let r = build(&args, None, "h", &s(&["/"]), false, 0).unwrap();
        assert!(
            r[0].bytes
                .ends_with(b"Content-Length: 4\r\n\r\n\x00\x01\x02\xff")
        );
        std::fs::remove_file(&path).unwrap();
        let e = build(&args, None, "h", &s(&["/"]), false, 0).unwrap_err();
        assert!(format!("{e:#}").starts_with("--body-file "), "{e:#}");
    }
}
