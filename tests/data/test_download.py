"""`nnsim data download`: from a local HTTP server on 127.0.0.1, with checksums and atomic writes."""

import gzip
import hashlib
import http.server
import threading
from functools import partial

import pytest

from nnsim.data.download import RemoteFile, download_dataset, verify
from nnsim.errors import NnsimError


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def fixture_file(www, name, payload: bytes) -> RemoteFile:
    data = gzip.compress(payload)
    (www / name).write_bytes(data)
    return RemoteFile(name, (f"sha256:{hashlib.sha256(data).hexdigest()}",))


def test_downloads_verifies_and_reports_progress(server, tmp_path):
    www, url = server
    files = (fixture_file(www, "a.gz", b"first" * 1000), fixture_file(www, "b.gz", b"second"))
    seen = []
    folder = download_dataset(
        "mnist",
        dest=tmp_path / "out",
        mirrors=(url,),
        files=files,
        progress=lambda name, done, total: seen.append((name, done, total)),
    )
    assert sorted(p.name for p in folder.iterdir()) == ["a.gz", "b.gz"]
    assert gzip.decompress((folder / "a.gz").read_bytes()) == b"first" * 1000
    assert {name for name, _, _ in seen} == {"a.gz", "b.gz"}
    assert all(done == total for name, done, total in seen if name == "b.gz")


def test_a_bad_checksum_leaves_nothing_behind(server, tmp_path):
    www, url = server
    (www / "a.gz").write_bytes(gzip.compress(b"tampered"))
    files = (RemoteFile("a.gz", ("sha256:" + "0" * 64,)),)
    with pytest.raises(NnsimError, match="checksum mismatch"):
        download_dataset("mnist", dest=tmp_path / "out", mirrors=(url,), files=files)
    assert list((tmp_path / "out").iterdir()) == []


def test_falls_back_to_the_next_mirror(server, tmp_path):
    www, url = server
    files = (fixture_file(www, "a.gz", b"payload"),)
    folder = download_dataset("mnist", dest=tmp_path / "out", mirrors=(url + "missing/", url), files=files)
    assert (folder / "a.gz").exists()


def test_no_mirror_answers(tmp_path):
    files = (RemoteFile("a.gz", ("sha256:" + "0" * 64,)),)
    with pytest.raises(NnsimError, match="could not download a.gz"):
        download_dataset("mnist", dest=tmp_path / "out", mirrors=("http://127.0.0.1:9/",), files=files, timeout=2)


def test_existing_verified_files_are_kept(server, tmp_path):
    www, url = server
    files = (fixture_file(www, "a.gz", b"payload"),)
    out = tmp_path / "out"
    download_dataset("mnist", dest=out, mirrors=(url,), files=files)
    (www / "a.gz").unlink()  # a second run must not need the server
    download_dataset("mnist", dest=out, mirrors=(url,), files=files)


def test_recompressed_mnist_passes_by_its_decompressed_contents():
    payload = b"the same pixels"
    official = gzip.compress(payload, mtime=0)
    recompressed = gzip.compress(payload, compresslevel=1, mtime=12345)
    checks = ("md5:" + hashlib.md5(official).hexdigest(), "raw-sha256:" + hashlib.sha256(payload).hexdigest())
    assert official != recompressed
    assert verify(official, checks) and verify(recompressed, checks)
    assert not verify(gzip.compress(b"other pixels"), checks)


def test_unknown_name(tmp_path):
    with pytest.raises(NnsimError, match="cannot download"):
        download_dataset("cifar10", dest=tmp_path)
