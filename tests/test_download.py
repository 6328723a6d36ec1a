"""download(): local copies, file:// URLs and a loopback HTTP server; sha256, resume, refusals."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from archives import make_archive
from imdb_sentiment.dataset import download as data
from imdb_sentiment.dataset.download import OFFLINE_HINT, download
from imdb_sentiment.errors import PipelineError

HTML = b"<!DOCTYPE html>\n<html><head><title>Moved</title></head><body>Please log in</body></html>\n"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    # Enough reviews that "halfway" is well inside the compressed stream.
    return make_archive(tmp_path_factory.mktemp("src") / "aclImdb_v1.tar.gz", reviews=120)


@pytest.fixture(scope="module")
def payload(archive) -> bytes:
    return archive.read_bytes()


@pytest.fixture
def sha(payload) -> str:
    return hashlib.sha256(payload).hexdigest()


@pytest.fixture
def out(tmp_path) -> Path:
    """The output path, alone in its folder, so leftovers are easy to see."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder / "aclImdb_v1.tar.gz"


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Backoff sleeps are recorded instead of slept."""
    calls: list[float] = []
    monkeypatch.setattr(data.time, "sleep", calls.append)
    return calls


def error(url: str, dest: Path, sha256: str = "", **kwargs) -> str:
    with pytest.raises(PipelineError) as info:
        download(url, sha256, dest, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def assert_nothing_written(dest: Path) -> None:
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == [], "temporary files left behind"


# --- local sources -------------------------------------------------------------------------


def test_local_path_is_copied_and_verified(archive, payload, sha, out):
    assert download(str(archive), sha, out) == sha
    assert out.read_bytes() == payload
    assert list(out.parent.iterdir()) == [out]


def test_file_url_is_copied_and_verified(archive, payload, sha, out):
    assert archive.as_uri().startswith("file:///")
    assert download(archive.as_uri(), sha, out) == sha
    assert out.read_bytes() == payload


def test_relative_local_path(archive, payload, sha, out, monkeypatch):
    monkeypatch.chdir(archive.parent)
    assert download(archive.name, sha, out) == sha
    assert out.read_bytes() == payload


def test_relative_local_path_starts_at_the_dvc_root_dvc_names(archive, payload, sha, out, monkeypatch, tmp_path):
    """A queued experiment runs in a copy of the project under .dvc/tmp/exps; DVC_ROOT names the
    project itself, where a relative data.url was meant from."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_ROOT", str(archive.parent))
    assert download(archive.name, sha, out) == sha
    assert out.read_bytes() == payload


def test_validate_checks_a_local_archive_and_its_hash_naming_the_path_it_tried(archive, sha, monkeypatch, tmp_path):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    data.check_local_source(str(archive), sha)
    data.check_local_source(str(archive), "")  # no hash: no check of it
    data.check_local_source("https://example.invalid/aclImdb_v1.tar.gz", sha)  # http(s): download's to check
    with pytest.raises(PipelineError) as info:
        data.check_local_source("../missing.tar.gz", sha)
    assert str(info.value) == (f"data.url: ../missing.tar.gz (that is {tmp_path.parent}/missing.tar.gz) is not a file; "
                               "expected the aclImdb_v1.tar.gz archive")
    with pytest.raises(PipelineError) as info:
        data.check_local_source(str(archive), "0" * 64)
    assert str(info.value) == (f"sha256 mismatch for data.url {archive}: expected {'0' * 64} (data.sha256), got {sha}")


def test_wrong_sha256_names_both_hashes_and_writes_nothing(archive, sha, out):
    wrong = "0" * 64
    message = error(str(archive), out, wrong)
    assert "sha256 mismatch" in message and "data.url" in message and "data.sha256" in message
    assert f"expected {wrong}" in message and f"got {sha}" in message
    assert_nothing_written(out)


def test_failed_download_keeps_the_previous_file(archive, out):
    out.write_bytes(b"previous archive")
    error(str(archive), out, "f" * 64)
    assert out.read_bytes() == b"previous archive"
    assert list(out.parent.iterdir()) == [out]


def test_empty_sha256_skips_verification(archive, payload, sha, out):
    assert download(str(archive), "", out) == sha
    assert out.read_bytes() == payload


def test_download_replaces_an_existing_file(archive, payload, sha, out):
    out.write_bytes(b"stale")
    assert download(str(archive), sha, out) == sha
    assert out.read_bytes() == payload


def test_creates_missing_parent_folders(archive, payload, sha, tmp_path):
    dest = tmp_path / "a" / "b" / "aclImdb_v1.tar.gz"
    download(str(archive), sha, dest)
    assert dest.read_bytes() == payload


@pytest.mark.parametrize("with_sha", [False, True])
def test_non_gzip_file_is_refused(tmp_path, out, with_sha):
    page = tmp_path / "aclImdb_v1.tar.gz"
    page.write_bytes(HTML)
    message = error(str(page), out, hashlib.sha256(HTML).hexdigest() if with_sha else "")
    assert "is not a gzip archive" in message and "<!DOCTYPE html>" in message
    assert_nothing_written(out)


def test_missing_local_file(tmp_path, out):
    message = error(str(tmp_path / "nowhere.tar.gz"), out)
    assert "data.url" in message and "nowhere.tar.gz is not a file" in message
    assert_nothing_written(out)


def test_unsupported_scheme(out):
    message = error("ftp://example.com/aclImdb_v1.tar.gz", out)
    assert "data.url" in message and "unsupported scheme 'ftp'" in message
    assert_nothing_written(out)


# --- HTTP ----------------------------------------------------------------------------------


class Server:
    """A loopback HTTP server; the request path picks the behaviour (see Handler.do_GET)."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.hits: dict[str, int] = {}
        self.release = threading.Event()  # lets a /hang handler go at teardown
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_GET(self):
                server.record(self.path, self.headers.get("Range"))
                server.respond(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def record(self, path: str, range_header: str | None) -> None:
        self.requests.append((path, range_header))
        self.hits[path] = self.hits.get(path, 0) + 1

    def respond(self, h: http.server.BaseHTTPRequestHandler) -> None:
        body, path, hit = self.payload, h.path, self.hits[h.path]
        if path == "/missing":
            h.send_error(404, "Not Found")
        elif path == "/html":
            self.send(h, 200, HTML, content_type="text/html; charset=utf-8")
        elif path == "/hang":
            self.release.wait(10)
        elif path == "/flaky-503" and hit == 1:
            h.send_error(503, "Service Unavailable")
        elif path == "/drop-once" and hit == 1 or path == "/always-drop":
            self.send(h, 200, body, cut=len(body) // 2)  # promises all, sends half, hangs up
        elif path == "/drop-once-no-range" and hit == 1:
            self.send(h, 200, body, cut=len(body) // 3)
        elif path == "/drop-once" and h.headers.get("Range"):
            start = int(h.headers["Range"].removeprefix("bytes=").removesuffix("-"))
            self.send(h, 206, body[start:], extra={"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
        elif path == "/no-length":
            self.send(h, 200, body, length=False)
        else:  # /ok, and the retries of /flaky-503 and /drop-once-no-range (Range ignored)
            self.send(h, 200, body)

    @staticmethod
    def send(h, status: int, body: bytes, *, content_type: str = "application/x-gzip",
             cut: int | None = None, length: bool = True, extra: dict | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        if length:
            h.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            h.send_header(name, value)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(body if cut is None else body[:cut])
        h.wfile.flush()
        h.close_connection = True


@pytest.fixture
def server(payload):
    srv = Server(payload)
    srv.thread.start()
    yield srv
    srv.release.set()
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(5)


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on (connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_200(server, payload, sha, out, sleeps):
    assert download(server.url("/ok"), sha, out, retries=2, timeout=5) == sha
    assert out.read_bytes() == payload
    assert list(out.parent.iterdir()) == [out]
    assert server.requests == [("/ok", None)]
    assert sleeps == []


def test_http_without_content_length(server, payload, sha, out, sleeps):
    assert download(server.url("/no-length"), sha, out, retries=2, timeout=5) == sha
    assert out.read_bytes() == payload


def test_dropped_connection_resumes_with_range(server, payload, sha, out, sleeps):
    assert download(server.url("/drop-once"), sha, out, retries=3, timeout=5) == sha
    assert out.read_bytes() == payload
    assert server.requests == [("/drop-once", None), ("/drop-once", f"bytes={len(payload) // 2}-")]
    assert len(sleeps) == 1
    assert list(out.parent.iterdir()) == [out]


def test_dropped_connection_restarts_when_range_is_ignored(server, payload, sha, out, sleeps):
    """A 200 answer to a Range request is the whole file again: it must not be appended."""
    assert download(server.url("/drop-once-no-range"), sha, out, retries=3, timeout=5) == sha
    assert out.read_bytes() == payload
    assert [r for _, r in server.requests] == [None, f"bytes={len(payload) // 3}-"]


def test_server_error_is_retried(server, payload, sha, out, sleeps):
    assert download(server.url("/flaky-503"), sha, out, retries=2, timeout=5) == sha
    assert out.read_bytes() == payload
    assert server.hits["/flaky-503"] == 2


def test_connection_that_always_drops_gives_up_with_offline_hint(server, out, sha, sleeps):
    url = server.url("/always-drop")
    message = error(url, out, sha, retries=3, timeout=5)
    assert message.startswith(f"cannot download data.url {url} (")
    assert "IncompleteRead" in message
    assert message.endswith(OFFLINE_HINT)
    assert "dvc exp run -S data.url=" in message
    assert server.hits["/always-drop"] == 3
    assert len(sleeps) == 2
    assert_nothing_written(out)


def test_404_fails_at_once(server, out, sha, sleeps):
    url = server.url("/missing")
    message = error(url, out, sha, retries=4, timeout=5)
    assert "data.url" in message and url in message and "HTTP 404" in message
    assert server.hits["/missing"] == 1
    assert sleeps == []
    assert_nothing_written(out)


def test_html_page_served_with_200_is_refused(server, out, sleeps):
    url = server.url("/html")
    message = error(url, out, "", retries=4, timeout=5)
    assert url in message and "text/html" in message and "not the archive" in message
    assert server.hits["/html"] == 1
    assert_nothing_written(out)


def test_unreachable_server_gives_offline_hint(closed_port, out, sha, sleeps):
    url = f"http://127.0.0.1:{closed_port}/aclImdb_v1.tar.gz"
    message = error(url, out, sha, retries=2, timeout=5)
    assert message.startswith(f"cannot download data.url {url} (")
    assert "refused" in message.lower()
    assert message.endswith(OFFLINE_HINT)
    assert len(sleeps) == 1
    assert_nothing_written(out)


def test_silent_server_times_out(server, out, sha, sleeps):
    message = error(server.url("/hang"), out, sha, retries=2, timeout=0.3)
    assert "timed out" in message and message.endswith(OFFLINE_HINT)
    assert server.hits["/hang"] == 2
    assert_nothing_written(out)


def test_http_wrong_sha256(server, sha, out, sleeps):
    message = error(server.url("/ok"), out, "a" * 64, retries=2, timeout=5)
    assert f"expected {'a' * 64}" in message and f"got {sha}" in message
    assert_nothing_written(out)


def test_backoff_grows(closed_port, out, sleeps):
    error(f"http://127.0.0.1:{closed_port}/x.tar.gz", out, retries=4, timeout=5)
    assert len(sleeps) == 3
    assert sleeps == sorted(sleeps) and sleeps[0] > 0
