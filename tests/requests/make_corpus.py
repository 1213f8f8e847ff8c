"""Generate the HTTP/1.1 request corpus in tests/requests/{valid,invalid}/.

Every case is written here as the exact bytes a client sends (bytes literals,
so CR, LF, NUL and obs-text are explicit) next to what the server must make of
them.  Run ``python tests/requests/make_corpus.py`` after editing; it rewrites
every ``NNN.http`` / ``NNN.json`` pair, numbering cases in the order below.

Sidecar format (UTF-8 JSON):

valid/NNN.json
    description   one line
    settings      gunicorn setting name -> value (empty: defaults)
    requests      one entry per request in the file, in order:
                  method, uri (raw target), path (raw, not percent-decoded,
                  without query and fragment), query, fragment, version [1, 1],
                  headers [[NAME, value], ...] as kept by the parser (names
                  upper-cased, values stripped of SP/HTAB, duplicates kept
                  apart, dropped headers absent), body (decoded, as latin-1
                  text), trailers (optional, same shape as headers)

invalid/NNN.json
    description   one line
    settings      as above
    status        the status rsgi answers; the connection is then closed
    valid_before  how many complete valid requests precede the bad one (they
                  are answered first)

Optional keys in either, for the pytest replay against gunicorn only:
    gunicorn_status  the status gunicorn 27 answers where rsgi deliberately
                     differs (505 for unsupported major versions)
    gunicorn_skip    why gunicorn cannot be checked on this case at all
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

VALID = []
INVALID = []


def split_target(uri):
    """(path, query, fragment) of a request target, path left encoded."""
    rest = uri
    fragment = ""
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
    query = ""
    if "?" in rest:
        rest, query = rest.split("?", 1)
    if "://" in rest:
        after_scheme = rest.split("://", 1)[1]
        slash = after_scheme.find("/")
        rest = after_scheme[slash:] if slash >= 0 else ""
    return rest, query, fragment


def req(method, uri, headers, body=b"", version=(1, 1), trailers=None, path=None):
    """One expected request; ``headers`` is a list of (NAME, value) pairs."""
    p, query, fragment = split_target(uri)
    out = {
        "method": method,
        "uri": uri,
        "path": p if path is None else path,
        "query": query,
        "fragment": fragment,
        "version": list(version),
        "headers": [[n, v] for n, v in headers],
        "body": body.decode("latin-1"),
    }
    if trailers:
        out["trailers"] = [[n, v] for n, v in trailers]
    return out


def valid(description, raw, requests, settings=None, **extra):
    VALID.append((raw, dict({"description": description,
                             "settings": settings or {},
                             "requests": requests}, **extra)))


def invalid(description, raw, status, valid_before=0, settings=None, **extra):
    INVALID.append((raw, dict({"description": description,
                               "settings": settings or {},
                               "status": status,
                               "valid_before": valid_before}, **extra)))


H = [("HOST", "example.com")]

# ---------------------------------------------------------------------------
# valid: request line and target forms
# ---------------------------------------------------------------------------

valid("simplest GET with a Host header",
      b"GET / HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/", H)])

valid("GET with a path and several ordinary headers",
      b"GET /docs/index.html HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"User-Agent: corpus/1.0\r\n"
      b"Accept: text/html, */*;q=0.1\r\n"
      b"Accept-Language: en-GB\r\n"
      b"\r\n",
      [req("GET", "/docs/index.html",
           H + [("USER-AGENT", "corpus/1.0"), ("ACCEPT", "text/html, */*;q=0.1"),
                ("ACCEPT-LANGUAGE", "en-GB")])])

valid("absolute-form target: path is what follows the authority",
      b"GET http://example.com:8080/a/b?x=1 HTTP/1.1\r\n"
      b"Host: example.com:8080\r\n"
      b"\r\n",
      [req("GET", "http://example.com:8080/a/b?x=1", [("HOST", "example.com:8080")])])

valid("asterisk-form target with OPTIONS",
      b"OPTIONS * HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("OPTIONS", "*", H)])

valid("query string and fragment are split off the path",
      b"GET /search?q=rust&lang=en#results HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/search?q=rust&lang=en#results", H)])

valid("a question mark after the fragment mark belongs to the fragment",
      b"GET /page#frag?not-a-query HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/page#frag?not-a-query", H)])

valid("query keeps later question marks and slashes",
      b"GET /p?a=1?b=/c/d&e= HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/p?a=1?b=/c/d&e=", H)])

valid("percent-encoded path stays raw in path, decoded bytes in PATH_INFO",
      b"GET /caf%C3%A9/a%20b/%2Fslash?x=%20y HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/caf%C3%A9/a%20b/%2Fslash?x=%20y", H)])

valid("malformed percent escapes are passed through undecoded",
      b"GET /100%25/%zz/%4 HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/100%25/%zz/%4", H)])

valid("origin-form path starting with two slashes is a path, not an authority",
      b"GET //two//slashes?x HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "//two//slashes?x", H)])

valid("printable ASCII punctuation is accepted in the target",
      b"GET /q\"<>{}|\\^`!$&'()*+,;=:@~ HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/q\"<>{}|\\^`!$&'()*+,;=:@~", H)])

valid("HTTP/1.9 is a 1.x minor version and accepted",
      b"GET /minor HTTP/1.9\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/minor", H, version=(1, 9))])

valid("registered methods with a hyphen and of maximum default length",
      b"M-SEARCH /upnp HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n"
      b"VERSION-CONTROL /svn HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n"
      b"ABCDEFGHIJKLMNOPQRST /twenty HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("M-SEARCH", "/upnp", H),
       req("VERSION-CONTROL", "/svn", H),
       req("ABCDEFGHIJKLMNOPQRST", "/twenty", H)])

valid("one empty CRLF line before the request line is ignored",
      b"\r\n"
      b"GET /after-crlf HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/after-crlf", H)])

valid("request line of exactly 4094 bytes, the default limit",
      b"GET /" + b"a" * 4080 + b" HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/" + "a" * 4080, H)])

# ---------------------------------------------------------------------------
# valid: connection management
# ---------------------------------------------------------------------------

valid("HTTP/1.0 without Host or keep-alive; connection closes after",
      b"GET /old HTTP/1.0\r\n"
      b"\r\n",
      [req("GET", "/old", [], version=(1, 0))])

valid("pipelined HTTP/1.0 requests kept open by Connection: keep-alive",
      b"GET /one HTTP/1.0\r\n"
      b"Connection: keep-alive\r\n"
      b"\r\n"
      b"GET /two HTTP/1.0\r\n"
      b"\r\n",
      [req("GET", "/one", [("CONNECTION", "keep-alive")], version=(1, 0)),
       req("GET", "/two", [], version=(1, 0))])

valid("HTTP/1.1 with Connection: close; connection closes after",
      b"GET /bye HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Connection: close\r\n"
      b"\r\n",
      [req("GET", "/bye", H + [("CONNECTION", "close")])])

valid("pipelined pair of GETs in one write",
      b"GET /first HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n"
      b"GET /second?n=2 HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/first", H), req("GET", "/second?n=2", H)])

valid("pipelined POST with Content-Length body then GET",
      b"POST /submit HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Content-Type: application/x-www-form-urlencoded\r\n"
      b"Content-Length: 7\r\n"
      b"\r\n"
      b"a=1&b=2"
      b"GET /next HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("POST", "/submit",
           H + [("CONTENT-TYPE", "application/x-www-form-urlencoded"),
                ("CONTENT-LENGTH", "7")], body=b"a=1&b=2"),
       req("GET", "/next", H)])

valid("three pipelined requests: GET, chunked POST, GET",
      b"GET /1 HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n"
      b"POST /2 HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: chunked\r\n"
      b"\r\n"
      b"3\r\nabc\r\n"
      b"0\r\n"
      b"\r\n"
      b"GET /3 HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/1", H),
       req("POST", "/2", H + [("TRANSFER-ENCODING", "chunked")], body=b"abc"),
       req("GET", "/3", H)])

valid("an empty CRLF line after a body, before the next pipelined request",
      b"POST /a HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Content-Length: 2\r\n"
      b"\r\n"
      b"hi"
      b"\r\n"
      b"GET /b HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("POST", "/a", H + [("CONTENT-LENGTH", "2")], body=b"hi"),
       req("GET", "/b", H)])

# ---------------------------------------------------------------------------
# valid: Content-Length bodies
# ---------------------------------------------------------------------------

valid("POST with a Content-Length body",
      b"POST /echo HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Content-Type: text/plain; charset=utf-8\r\n"
      b"Content-Length: 11\r\n"
      b"\r\n"
      b"hello world",
      [req("POST", "/echo",
           H + [("CONTENT-TYPE", "text/plain; charset=utf-8"), ("CONTENT-LENGTH", "11")],
           body=b"hello world")])

valid("POST with Content-Length: 0 has an empty body",
      b"POST /empty HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Content-Length: 0\r\n"
      b"\r\n",
      [req("POST", "/empty", H + [("CONTENT-LENGTH", "0")])])

valid("Content-Length with leading zeros is still decimal",
      b"PUT /zeros HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Content-Length: 0005\r\n"
      b"\r\n"
      b"12345",
      [req("PUT", "/zeros", H + [("CONTENT-LENGTH", "0005")], body=b"12345")])

valid("Content-Length value surrounded by SP and HTAB",
      b"POST /ws HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Content-Length: \t3 \r\n"
      b"\r\n"
      b"xyz",
      [req("POST", "/ws", H + [("CONTENT-LENGTH", "3")], body=b"xyz")])

valid("body bytes may be anything: NUL, CR, LF, 0xFF",
      b"POST /bin HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Content-Type: application/octet-stream\r\n"
      b"Content-Length: 10\r\n"
      b"\r\n"
      b"\x00\r\n\xff\xfeAB\n\r\x7f",
      [req("POST", "/bin",
           H + [("CONTENT-TYPE", "application/octet-stream"), ("CONTENT-LENGTH", "10")],
           body=b"\x00\r\n\xff\xfeAB\n\r\x7f")])

valid("a request without any framing header has an empty body",
      b"DELETE /item/7 HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("DELETE", "/item/7", H)])

# ---------------------------------------------------------------------------
# valid: chunked bodies
# ---------------------------------------------------------------------------

valid("chunked body in two chunks",
      b"POST /chunked HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: chunked\r\n"
      b"\r\n"
      b"5\r\nhello\r\n"
      b"6\r\n world\r\n"
      b"0\r\n"
      b"\r\n",
      [req("POST", "/chunked", H + [("TRANSFER-ENCODING", "chunked")], body=b"hello world")])

valid("chunk extensions: bare name, token value, quoted value, whitespace before ;",
      b"POST /ext HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: chunked\r\n"
      b"\r\n"
      b"5;name=value\r\nhello\r\n"
      b"1;flag;q=\"a \\\"quoted\\\" ; string\"\r\n,\r\n"
      b"6 \t; spaced = \"x\"\r\n world\r\n"
      b"0;last=yes\r\n"
      b"\r\n",
      [req("POST", "/ext", H + [("TRANSFER-ENCODING", "chunked")], body=b"hello, world")])

valid("chunked body followed by a trailer section",
      b"POST /trailers HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: chunked\r\n"
      b"Trailer: X-Checksum, X-Note\r\n"
      b"\r\n"
      b"4\r\ndata\r\n"
      b"0\r\n"
      b"X-Checksum: 8d777f38\r\n"
      b"X-Note:\t done \r\n"
      b"\r\n",
      [req("POST", "/trailers",
           H + [("TRANSFER-ENCODING", "chunked"), ("TRAILER", "X-Checksum, X-Note")],
           body=b"data",
           trailers=[("X-CHECKSUM", "8d777f38"), ("X-NOTE", "done")])])

valid("chunk sizes with many leading zeros (more than 16 digits) do not overflow",
      b"POST /zeros HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: chunked\r\n"
      b"\r\n"
      b"00000000000000000005\r\nhello\r\n"
      b"0003\r\nabc\r\n"
      b"000\r\n"
      b"\r\n",
      [req("POST", "/zeros", H + [("TRANSFER-ENCODING", "chunked")], body=b"helloabc")])

valid("chunk sizes in upper- and lower-case hex",
      b"POST /hex HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: chunked\r\n"
      b"\r\n"
      b"A\r\n0123456789\r\n"
      b"1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
      b"b\r\nABCDEFGHIJK\r\n"
      b"0\r\n"
      b"\r\n",
      [req("POST", "/hex", H + [("TRANSFER-ENCODING", "chunked")],
           body=b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJK")])

valid("chunk data may contain CRLF and the chunked coding name is case-insensitive",
      b"POST /crlf HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: Chunked\r\n"
      b"\r\n"
      b"8\r\n0\r\n\r\nab\n\r\n"
      b"0\r\n"
      b"\r\n",
      [req("POST", "/crlf", H + [("TRANSFER-ENCODING", "Chunked")], body=b"0\r\n\r\nab\n")])

valid("gzip before chunked is accepted (body not decompressed); connection closes after",
      b"POST /gz HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: gzip, chunked\r\n"
      b"\r\n"
      b"4\r\n\x1f\x8b\x08\x00\r\n"
      b"0\r\n"
      b"\r\n",
      [req("POST", "/gz", H + [("TRANSFER-ENCODING", "gzip, chunked")], body=b"\x1f\x8b\x08\x00")])

valid("identity before chunked is accepted",
      b"POST /id HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: identity , chunked\r\n"
      b"\r\n"
      b"2\r\nok\r\n"
      b"0\r\n"
      b"\r\n",
      [req("POST", "/id", H + [("TRANSFER-ENCODING", "identity , chunked")], body=b"ok")])

valid("Transfer-Encoding split over two header lines, chunked last; closes after (deflate)",
      b"POST /two-te HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: deflate\r\n"
      b"Transfer-Encoding: chunked\r\n"
      b"\r\n"
      b"3\r\nxyz\r\n"
      b"0\r\n"
      b"\r\n",
      [req("POST", "/two-te",
           H + [("TRANSFER-ENCODING", "deflate"), ("TRANSFER-ENCODING", "chunked")],
           body=b"xyz")])

# ---------------------------------------------------------------------------
# valid: Expect
# ---------------------------------------------------------------------------

valid("Expect: 100-continue with a body",
      b"PUT /upload HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Expect: 100-continue\r\n"
      b"Content-Length: 4\r\n"
      b"\r\n"
      b"data",
      [req("PUT", "/upload",
           H + [("EXPECT", "100-continue"), ("CONTENT-LENGTH", "4")], body=b"data")])

valid("Expect: 100-Continue is case-insensitive; ignored in HTTP/1.0",
      b"POST /old-expect HTTP/1.0\r\n"
      b"Expect: 100-Continue\r\n"
      b"Content-Length: 3\r\n"
      b"\r\n"
      b"abc",
      [req("POST", "/old-expect",
           [("EXPECT", "100-Continue"), ("CONTENT-LENGTH", "3")], body=b"abc", version=(1, 0))])

# ---------------------------------------------------------------------------
# valid: header fields
# ---------------------------------------------------------------------------

valid("header values with obs-text bytes 0x80-0xFF",
      b"GET /latin HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X-Latin: caf\xe9 \x80\xa0\xff\r\n"
      b"\r\n",
      [req("GET", "/latin", H + [("X-LATIN", "caf\xe9 \x80\xa0\xff")])])

valid("empty and whitespace-only header values",
      b"GET /empty-values HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X-Empty:\r\n"
      b"X-Blank:   \t \r\n"
      b"\r\n",
      [req("GET", "/empty-values", H + [("X-EMPTY", ""), ("X-BLANK", "")])])

valid("SP and HTAB around a value are stripped, inner whitespace kept",
      b"GET /tabs HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X-Tab:\t\t value with  inner\tspace \t\r\n"
      b"X-Tight:tight\r\n"
      b"\r\n",
      [req("GET", "/tabs",
           H + [("X-TAB", "value with  inner\tspace"), ("X-TIGHT", "tight")])])

valid("header names are case-insensitive and may use every token character",
      b"GET /names HTTP/1.1\r\n"
      b"hOsT: example.com\r\n"
      b"x-!#$%&'*+.^`|~9: token\r\n"
      b"\r\n",
      [req("GET", "/names", [("HOST", "example.com"), ("X-!#$%&'*+.^`|~9", "token")])])

valid("headers containing underscores are dropped by default",
      b"GET /underscore HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X_Forwarded_For: 10.9.8.7\r\n"
      b"X-Forwarded-For: 192.0.2.1\r\n"
      b"X-Real_IP: 10.0.0.1\r\n"
      b"\r\n",
      [req("GET", "/underscore", H + [("X-FORWARDED-FOR", "192.0.2.1")])])

valid("repeated header fields are kept apart (joined with ',' in the environ, cookies with '; ')",
      b"GET /dups HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X-Dup: a\r\n"
      b"Cookie: a=1\r\n"
      b"X-Dup: b, c\r\n"
      b"Cookie: b=2\r\n"
      b"\r\n",
      [req("GET", "/dups",
           H + [("X-DUP", "a"), ("COOKIE", "a=1"), ("X-DUP", "b, c"), ("COOKIE", "b=2")])])

valid("SCRIPT_NAME and PATH_INFO headers from a trusted (loopback) peer are kept",
      b"GET /app/page?x=1 HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"SCRIPT_NAME: /app\r\n"
      b"PATH_INFO: /ignored\r\n"
      b"\r\n",
      [req("GET", "/app/page?x=1",
           H + [("SCRIPT_NAME", "/app"), ("PATH_INFO", "/ignored")])])

valid("header line of exactly 8190 bytes including CRLF, the default limit",
      b"GET /long-header HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X-Long: " + b"v" * 8180 + b"\r\n"
      b"\r\n",
      [req("GET", "/long-header", H + [("X-LONG", "v" * 8180)])])

valid("exactly 100 header fields, the default limit",
      b"GET /many HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      + b"".join(b"X-H-%03d: %d\r\n" % (i, i) for i in range(1, 100))
      + b"\r\n",
      [req("GET", "/many", H + [("X-H-%03d" % i, str(i)) for i in range(1, 100)])])

# ---------------------------------------------------------------------------
# valid: settings
# ---------------------------------------------------------------------------

valid("limit_request_line 0 lifts the default limit",
      b"GET /" + b"b" * 5986 + b" HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/" + "b" * 5986, H)],
      settings={"limit_request_line": 0})

valid("request line of exactly limit_request_line 40 bytes",
      b"GET /" + b"c" * 26 + b" HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/" + "c" * 26, H)],
      settings={"limit_request_line": 40})

valid("exactly limit_request_fields 3 header fields",
      b"GET /three HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X-A: 1\r\n"
      b"X-B: 2\r\n"
      b"\r\n",
      [req("GET", "/three", H + [("X-A", "1"), ("X-B", "2")])],
      settings={"limit_request_fields": 3})

valid("header line of exactly limit_request_field_size 30 bytes including CRLF",
      b"GET /field HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X-Long: " + b"w" * 20 + b"\r\n"
      b"\r\n",
      [req("GET", "/field", H + [("X-LONG", "w" * 20)])],
      settings={"limit_request_field_size": 30})

valid("header_map dangerous keeps underscore headers (ambiguous environ keys are joined)",
      b"GET /dangerous HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X_Forwarded_For: 10.9.8.7\r\n"
      b"X-Forwarded-For: 192.0.2.1\r\n"
      b"\r\n",
      [req("GET", "/dangerous",
           H + [("X_FORWARDED_FOR", "10.9.8.7"), ("X-FORWARDED-FOR", "192.0.2.1")])],
      settings={"header_map": "dangerous"})

valid("header_map refuse still accepts SCRIPT_NAME from a trusted peer (forwarder header)",
      b"GET /base/x HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"SCRIPT_NAME: /base\r\n"
      b"\r\n",
      [req("GET", "/base/x", H + [("SCRIPT_NAME", "/base")])],
      settings={"header_map": "refuse"})

valid("strip_header_spaces removes SP/HTAB between a header name and the colon",
      b"GET /strip HTTP/1.1\r\n"
      b"Host : example.com\r\n"
      b"X-A\t: 1\r\n"
      b"X-B \t : 2\r\n"
      b"\r\n",
      [req("GET", "/strip", H + [("X-A", "1"), ("X-B", "2")])],
      settings={"strip_header_spaces": True})

valid("permit_unconventional_http_method allows lowercase, short, long and # methods",
      b"get /lower HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n"
      b"GE /short HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n"
      b"ABCDEFGHIJKLMNOPQRSTU /long HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n"
      b"GET#X /hash HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("get", "/lower", H),
       req("GE", "/short", H),
       req("ABCDEFGHIJKLMNOPQRSTU", "/long", H),
       req("GET#X", "/hash", H)],
      settings={"permit_unconventional_http_method": True})

valid("casefold_http_method upper-cases a method that permit_unconventional_http_method let in",
      b"post /fold HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Content-Length: 2\r\n"
      b"\r\n"
      b"ok",
      [req("POST", "/fold", H + [("CONTENT-LENGTH", "2")], body=b"ok")],
      settings={"permit_unconventional_http_method": True, "casefold_http_method": True})

valid("permit_unconventional_http_version accepts HTTP/2.0 in an HTTP/1 request line",
      b"GET /v2 HTTP/2.0\r\n"
      b"Host: example.com\r\n"
      b"\r\n",
      [req("GET", "/v2", H, version=(2, 0))],
      settings={"permit_unconventional_http_version": True})

valid("permit_obsolete_folding joins continuation lines with one space",
      b"GET /fold HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X-Folded: one\r\n"
      b"   two\r\n"
      b"\tthree \r\n"
      b"X-After: yes\r\n"
      b"\r\n",
      [req("GET", "/fold", H + [("X-FOLDED", "one two three"), ("X-AFTER", "yes")])],
      settings={"permit_obsolete_folding": True})

valid("forwarder_headers lists which underscore headers a trusted peer may send",
      b"GET /fwd HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"X_Custom: yes\r\n"
      b"X_Other: no\r\n"
      b"SCRIPT_NAME: /dropped\r\n"
      b"\r\n",
      [req("GET", "/fwd", H + [("X_CUSTOM", "yes")])],
      settings={"forwarder_headers": "X_CUSTOM"})

valid("forwarded_allow_ips without loopback: SCRIPT_NAME from 127.0.0.1 is dropped",
      b"GET /app/page HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"SCRIPT_NAME: /app\r\n"
      b"\r\n",
      [req("GET", "/app/page", H)],
      settings={"forwarded_allow_ips": "192.0.2.1"})

valid("bodies of exactly limit_request_body 16 bytes, Content-Length then chunked",
      b"POST /lim HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Content-Length: 16\r\n"
      b"\r\n"
      b"0123456789abcdef"
      b"POST /lim2 HTTP/1.1\r\n"
      b"Host: example.com\r\n"
      b"Transfer-Encoding: chunked\r\n"
      b"\r\n"
      b"8\r\n01234567\r\n"
      b"8\r\n89abcdef\r\n"
      b"0\r\n"
      b"\r\n",
      [req("POST", "/lim", H + [("CONTENT-LENGTH", "16")], body=b"0123456789abcdef"),
       req("POST", "/lim2", H + [("TRANSFER-ENCODING", "chunked")], body=b"0123456789abcdef")],
      settings={"limit_request_body": 16})

# ---------------------------------------------------------------------------
# invalid: method
# ---------------------------------------------------------------------------

invalid("lowercase method",
        b"get / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("method shorter than 3 characters",
        b"GE / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("method longer than 20 characters",
        b"ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("method containing #",
        b"GE#T / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("method with a non-token character is refused even with permit_unconventional_http_method",
        b"GE(T / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400,
        settings={"permit_unconventional_http_method": True})
invalid("casefold_http_method alone does not admit a lowercase method",
        b"get / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400,
        settings={"casefold_http_method": True})

# ---------------------------------------------------------------------------
# invalid: request target
# ---------------------------------------------------------------------------

invalid("empty target (two spaces after the method)",
        b"GET  HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("asterisk-form with a method other than OPTIONS",
        b"GET * HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("authority-form with a method other than CONNECT",
        b"GET example.com:80 HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("relative target without a leading slash",
        b"GET index.html HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("NUL byte in the target",
        b"GET /a\x00b HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("bare CR inside the target",
        b"GET /a\rb HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("byte 0x80 in the target",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("DEL byte in the target",
        b"GET /a\x7fb HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("unencoded space inside the target",
        b"GET /a b HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)

# ---------------------------------------------------------------------------
# invalid: request line shape and version
# ---------------------------------------------------------------------------

invalid("HTAB instead of SP between method and target",
        b"GET\t/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("request line without a version (HTTP/0.9 style)",
        b"GET /\r\nHost: example.com\r\n\r\n", 400)
invalid("lowercase protocol name",
        b"GET / http/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("two-digit minor version",
        b"GET / HTTP/1.10\r\nHost: example.com\r\n\r\n", 400)
invalid("version without a minor part",
        b"GET / HTTP/1\r\nHost: example.com\r\n\r\n", 400)
invalid("trailing space after the version",
        b"GET / HTTP/1.1 \r\nHost: example.com\r\n\r\n", 400)
invalid("bare CR at the end of the request line before CRLF",
        b"GET / HTTP/1.1\r\r\nHost: example.com\r\n\r\n", 400)
invalid("well-formed HTTP/2.0 version in an HTTP/1 request line",
        b"GET / HTTP/2.0\r\nHost: example.com\r\n\r\n", 505, gunicorn_status=400)
invalid("well-formed HTTP/0.9 version",
        b"GET / HTTP/0.9\r\nHost: example.com\r\n\r\n", 505, gunicorn_status=400)
invalid("well-formed HTTP/3.1 version",
        b"GET / HTTP/3.1\r\nHost: example.com\r\n\r\n", 505, gunicorn_status=400)
invalid("two empty CRLF lines before the request line (only one is ignored)",
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)
invalid("bare LF as the empty line before the request line",
        b"\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)

# ---------------------------------------------------------------------------
# invalid: line endings and header bytes
# ---------------------------------------------------------------------------

invalid("bare LF ends the request line",
        b"GET / HTTP/1.1\nHost: example.com\r\n\r\n", 400)
invalid("bare LF ends a header line",
        b"GET / HTTP/1.1\r\nHost: example.com\nX-A: 1\r\n\r\n", 400)
invalid("bare LF ends the header section",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\n", 400)
invalid("bare CR inside a header value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\rb\r\n\r\n", 400)
invalid("NUL inside a header value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x00b\r\n\r\n", 400)
invalid("DEL inside a header value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x7fb\r\n\r\n", 400)
invalid("ESC control character inside a header value",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: \x1b[31mred\r\n\r\n", 400)
invalid("space between header name and colon",
        b"GET / HTTP/1.1\r\nHost : example.com\r\n\r\n", 400)
invalid("HTAB between header name and colon",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A\t: 1\r\n\r\n", 400)
invalid("empty header name",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n: value\r\n\r\n", 400)
invalid("header line without a colon",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nNoColonHere\r\n\r\n", 400)
invalid("header name with a non-token character",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX@A: 1\r\n\r\n", 400)
invalid("header name with an obs-text byte",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-\xe9: 1\r\n\r\n", 400)
invalid("obsolete line folding is refused by default",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: one\r\n two\r\n\r\n", 400)
invalid("whitespace before the first header line, even with permit_obsolete_folding",
        b"GET / HTTP/1.1\r\n Host: example.com\r\n\r\n", 400,
        settings={"permit_obsolete_folding": True})
invalid("header_map refuse rejects an underscore header",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX_Forwarded_For: 10.0.0.1\r\n\r\n", 400,
        settings={"header_map": "refuse"})
invalid("Expect with a value other than 100-continue",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nExpect: the-unexpected\r\n\r\n", 417)

# ---------------------------------------------------------------------------
# invalid: singleton fields and Content-Length
# ---------------------------------------------------------------------------

invalid("two Host headers",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nHost: example.org\r\n\r\n", 400)
invalid("two Content-Type headers",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n"
        b"Content-Type: text/html\r\nContent-Length: 2\r\n\r\nhi", 400)
invalid("two identical Content-Length headers",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n"
        b"Content-Length: 2\r\n\r\nhi", 400)
invalid("two differing Content-Length headers",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n"
        b"Content-Length: 7\r\n\r\nhiGET /", 400)
invalid("Content-Length with a plus sign",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: +5\r\n\r\nhello", 400)
invalid("negative Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: -1\r\n\r\nhello", 400)
invalid("Content-Length list with inner space",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5 5\r\n\r\nhello", 400)
invalid("Content-Length as a comma list",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5,5\r\n\r\nhello", 400)
invalid("hexadecimal Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0x5\r\n\r\nhello", 400)
invalid("empty Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length:\r\n\r\n", 400)
invalid("Content-Length with a non-ASCII digit (superscript two, 0xB2)",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: \xb2\r\n\r\nhi", 400)
invalid("Content-Length overflowing 64 bits",
        b"POST / HTTP/1.1\r\nHost: example.com\r\n"
        b"Content-Length: 18446744073709551616\r\n\r\nhi", 400,
        gunicorn_skip="gunicorn has no size bound and waits for the body")

# ---------------------------------------------------------------------------
# invalid: Transfer-Encoding
# ---------------------------------------------------------------------------

CHUNKED_HI = b"2\r\nhi\r\n0\r\n\r\n"

invalid("chunked followed by another coding (chunked not final)",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
        + CHUNKED_HI, 400)
invalid("identity after chunked",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
        + CHUNKED_HI, 400)
invalid("chunked listed twice in one header",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
        + CHUNKED_HI, 400)
invalid("chunked in two Transfer-Encoding headers",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + CHUNKED_HI, 400)
invalid("Transfer-Encoding gzip without chunked",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip\r\n\r\n"
        + CHUNKED_HI, 400)
invalid("Transfer-Encoding identity without chunked",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: identity\r\n"
        b"Content-Length: 2\r\n\r\nhi", 400)
invalid("unknown transfer coding before chunked",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: br, chunked\r\n\r\n"
        + CHUNKED_HI, 501)
invalid("unknown transfer coding resembling chunked",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: xchunked\r\n\r\n"
        + CHUNKED_HI, 501)
invalid("Content-Length before Transfer-Encoding: chunked",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 13\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + CHUNKED_HI, 400)
invalid("Transfer-Encoding: chunked before Content-Length",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\n\r\n" + CHUNKED_HI, 400)
invalid("chunked in an HTTP/1.0 request",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_HI, 400)

# ---------------------------------------------------------------------------
# invalid: chunked body
# ---------------------------------------------------------------------------

CHUNKED_HEAD = b"POST /c HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"

invalid("chunk size overflowing 64 bits",
        CHUNKED_HEAD + b"10000000000000000\r\nhi\r\n0\r\n\r\n", 400,
        gunicorn_skip="gunicorn has no size bound and waits for 2**64 bytes")
invalid("chunk size with a minus sign",
        CHUNKED_HEAD + b"-2\r\nhi\r\n0\r\n\r\n", 400)
invalid("chunk size with a plus sign",
        CHUNKED_HEAD + b"+2\r\nhi\r\n0\r\n\r\n", 400)
invalid("chunk size with a 0x prefix",
        CHUNKED_HEAD + b"0x2\r\nhi\r\n0\r\n\r\n", 400)
invalid("whitespace before the chunk size",
        CHUNKED_HEAD + b" 2\r\nhi\r\n0\r\n\r\n", 400)
invalid("whitespace after the chunk size without an extension",
        CHUNKED_HEAD + b"2 \r\nhi\r\n0\r\n\r\n", 400)
invalid("non-hex digit in the chunk size",
        CHUNKED_HEAD + b"2g\r\nhi\r\n0\r\n\r\n", 400)
invalid("empty chunk size line",
        CHUNKED_HEAD + b"\r\n2\r\nhi\r\n0\r\n\r\n", 400)
invalid("chunk data not followed by CRLF",
        CHUNKED_HEAD + b"2\r\nhiXX0\r\n\r\n", 400)
invalid("chunk data longer than its size",
        CHUNKED_HEAD + b"2\r\nhello\r\n0\r\n\r\n", 400)
invalid("chunk size line ended by a bare LF",
        CHUNKED_HEAD + b"2\nhi\r\n0\r\n\r\n", 400)
invalid("chunk extension without a name",
        CHUNKED_HEAD + b"2;=x\r\nhi\r\n0\r\n\r\n", 400)
invalid("chunk extension with an unterminated quoted string",
        CHUNKED_HEAD + b"2;a=\"open\r\nhi\r\n0\r\n\r\n", 400)
invalid("bare CR inside a chunk extension",
        CHUNKED_HEAD + b"2;a\rb\r\nhi\r\n0\r\n\r\n", 400)
invalid("Host in the trailer section",
        CHUNKED_HEAD + b"2\r\nhi\r\n0\r\nHost: evil.example\r\n\r\n", 400)
invalid("Content-Length in the trailer section",
        CHUNKED_HEAD + b"2\r\nhi\r\n0\r\nContent-Length: 2\r\n\r\n", 400)
invalid("Transfer-Encoding in the trailer section",
        CHUNKED_HEAD + b"2\r\nhi\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", 400)
invalid("Authorization in the trailer section",
        CHUNKED_HEAD + b"2\r\nhi\r\n0\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n", 400)
invalid("bare LF inside the trailer section",
        CHUNKED_HEAD + b"2\r\nhi\r\n0\r\nX-T: v\nX-U: w\r\n\r\n", 400)
invalid("trailer field without a colon",
        CHUNKED_HEAD + b"2\r\nhi\r\n0\r\nNotAField\r\n\r\n", 400)

# ---------------------------------------------------------------------------
# invalid: limits
# ---------------------------------------------------------------------------

invalid("request line of 4095 bytes, one over the default limit",
        b"GET /" + b"a" * 4081 + b" HTTP/1.1\r\nHost: example.com\r\n\r\n", 414)
invalid("request line one byte over limit_request_line 40",
        b"GET /" + b"c" * 27 + b" HTTP/1.1\r\nHost: example.com\r\n\r\n", 414,
        settings={"limit_request_line": 40})
invalid("limit_request_line above 8190 is capped at 8190",
        b"GET /" + b"d" * 8177 + b" HTTP/1.1\r\nHost: example.com\r\n\r\n", 414,
        settings={"limit_request_line": 9000})
invalid("101 header fields, one over the default limit",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n"
        + b"".join(b"X-H-%03d: %d\r\n" % (i, i) for i in range(1, 101))
        + b"\r\n", 431)
invalid("4 header fields with limit_request_fields 3",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n", 431,
        settings={"limit_request_fields": 3})
invalid("header line of 8191 bytes including CRLF, one over the default limit",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Long: " + b"v" * 8181 + b"\r\n\r\n", 431)
invalid("header line one byte over limit_request_field_size 30",
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Long: " + b"w" * 21 + b"\r\n\r\n", 431,
        settings={"limit_request_field_size": 30})
invalid("Content-Length over limit_request_body",
        b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 17\r\n\r\n"
        b"0123456789abcdefg", 413,
        settings={"limit_request_body": 16})
invalid("chunked body adding up to more than limit_request_body",
        CHUNKED_HEAD + b"8\r\n01234567\r\n9\r\n89abcdefg\r\n0\r\n\r\n", 413,
        settings={"limit_request_body": 16})

# ---------------------------------------------------------------------------
# invalid: after valid pipelined requests
# ---------------------------------------------------------------------------

invalid("valid GET then a lowercase method",
        b"GET /ok HTTP/1.1\r\nHost: example.com\r\n\r\n"
        b"get /bad HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, valid_before=1)
invalid("valid POST with body then a header with a space before the colon",
        b"POST /ok HTTP/1.1\r\nHost: example.com\r\nContent-Length: 4\r\n\r\nbody"
        b"GET /bad HTTP/1.1\r\nHost : example.com\r\n\r\n", 400, valid_before=1)
invalid("two valid requests then a chunked body with a bad terminator",
        b"GET /1 HTTP/1.1\r\nHost: example.com\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\nx\r\n0\r\n\r\n"
        + CHUNKED_HEAD + b"3\r\nabcde\r\n0\r\n\r\n", 400, valid_before=2)
invalid("a Content-Length body shorter than declared swallows the next request line",
        b"POST /short HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nab"
        b"GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, valid_before=1)


# ---------------------------------------------------------------------------
# absolute-form authorities (RFC 3986 host syntax), chunk sizes that can
# never be honoured, and what the fuzz targets found
# ---------------------------------------------------------------------------

valid("absolute-form targets with each RFC 3986 host form: reg-name with every allowed byte, "
      "IPv4, bracketed IPv6 and IPvFuture literals, an empty port, a query right after the authority",
      b"GET http://a.b-c_d~e!$&'()*+,;=%41/r HTTP/1.1\r\nHost: example.com\r\n\r\n"
      b"GET HTTP://127.0.0.1:8080/ip4 HTTP/1.1\r\nHost: example.com\r\n\r\n"
      b"GET http://[::ffff:192.0.2.1]:80/ip6 HTTP/1.1\r\nHost: example.com\r\n\r\n"
      b"GET http://[v1.fe80::a+en1]/future HTTP/1.1\r\nHost: example.com\r\n\r\n"
      b"GET https://example.com:/empty-port HTTP/1.1\r\nHost: example.com\r\n\r\n"
      b"GET http://example.com?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
      [req("GET", "http://a.b-c_d~e!$&'()*+,;=%41/r", H),
       req("GET", "HTTP://127.0.0.1:8080/ip4", H),
       req("GET", "http://[::ffff:192.0.2.1]:80/ip6", H),
       req("GET", "http://[v1.fe80::a+en1]/future", H),
       req("GET", "https://example.com:/empty-port", H),
       req("GET", "http://example.com?q=1", H)])

for description, target in [
        ("a byte a host may not contain (<)", b"http://exa<mple.com/p"),
        ("userinfo before the host", b"http://user@example.com/p"),
        ("an empty host", b"http:///p"),
        ("a port with a letter in it", b"http://example.com:80a/p"),
        ("two ports", b"http://example.com:80:81/p"),
        ("an IPv6 literal without its closing bracket", b"http://[::1/p"),
        ("an IPv6 literal that is not an address", b"http://[::1::2]/p"),
        ("an IPv6 literal with a zone identifier", b"http://[fe80::1%25en1]/p"),
        ("a closing bracket without an opening one", b"http://example.com]/p"),
        ("bytes after the IP literal that are not a port", b"http://[::1]x/p"),
        ("a bad percent-encoding in the host", b"http://ex%4gample.com/p"),
        ("a scheme that is not RFC 3986 syntax", b"ht^tp://example.com/p"),
        ("'://' inside a target that is not absolute-form", b"x?u=http://example.com/"),
]:
    invalid("absolute-form target with " + description,
            b"GET " + target + b" HTTP/1.1\r\nHost: example.com\r\n\r\n", 400)

invalid("chunk size above limit_request_body is answered before any data arrives",
        CHUNKED_HEAD + b"100\r\n", 413,
        settings={"limit_request_body": 16})
invalid("second chunk size taking the body over limit_request_body is answered before its data",
        CHUNKED_HEAD + b"a\r\n0123456789\r\n7\r\n", 413,
        settings={"limit_request_body": 16})
invalid("chunk size taking the body past 2**64-1 bytes is answered before its data",
        CHUNKED_HEAD + b"1\r\nx\r\nffffffffffffffff\r\n", 413)
invalid("request line over the limit that ends in a bare LF: 414 however the bytes arrive",
        b"GET /" + b"a" * 5000 + b" HTTP/1.1\n\r\n", 414)

invalid("bare LF early in a header block that then grows past the block bound: 400 however the bytes arrive",
        b"GET / HTTP/1.1\r\nA: b\nC: d\r\nX: " + b"y" * 60 + b"\r\n\r\n", 400,
        settings={"limit_request_fields": 2, "limit_request_field_size": 16})
invalid("header block past its bound before a bare LF: 431 however the bytes arrive",
        b"GET / HTTP/1.1\r\nX: " + b"y" * 60 + b"\r\nA: b\n\r\n", 431,
        settings={"limit_request_fields": 2, "limit_request_field_size": 16})


def write(kind, cases):
    folder = HERE / kind
    folder.mkdir(exist_ok=True)
    for old in folder.glob("[0-9][0-9][0-9].*"):
        old.unlink()
    for number, (raw, sidecar) in enumerate(cases, 1):
        stem = folder / ("%03d" % number)
        stem.with_suffix(".http").write_bytes(raw)
        stem.with_suffix(".json").write_text(dump(sidecar), encoding="utf-8")


def dump(value, indent=0):
    """JSON with one key, request or header pair per line; short lists inline."""
    pad = "  " * indent
    if isinstance(value, dict) and value:
        items = ["%s  %s: %s" % (pad, json.dumps(k), dump(v, indent + 1))
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}" + ("\n" if indent == 0 else "")
    if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
        items = [pad + "  " + dump(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False)


def main():
    write("valid", VALID)
    write("invalid", INVALID)
    print("wrote %d valid and %d invalid cases" % (len(VALID), len(INVALID)))


if __name__ == "__main__":
    main()
