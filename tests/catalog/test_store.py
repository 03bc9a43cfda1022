"""The artifact store contract, run against every implementation.

Each store is built by a factory that also says how to make its final rename fail, so the same
tests cover atomicity on the local folder, fsspec's ``memory://`` and ``file://``, and S3
(``s3fs`` against moto's local S3 server).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regrow.catalog.store import (
    ArtifactStore,
    FsspecStore,
    LocalStore,
    open_store,
    register_store,
)
from regrow.errors import (
    ArtifactCorrupted,
    ArtifactNotFound,
    ConfigError,
    InvalidKey,
    StoreError,
)


@dataclass
class Case:
    store: ArtifactStore
    fs: Any  # an fsspec file system that sees the store's files
    root: str  # the store's root on ``fs``
    break_rename: Callable[[pytest.MonkeyPatch], None]

    def path(self, key: str) -> str:
        return f"{self.root}/{key[:2]}/{key}"

    def temp_files(self) -> list[str]:
        folder = f"{self.root}/tmp"
        return list(self.fs.find(folder)) if self.fs.exists(folder) else []


def _fail(*args: Any, **kwargs: Any) -> None:
    raise OSError("simulated crash while moving the artifact into place")


def local_case(tmp_path: Path) -> Case:
    def break_rename(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(os, "replace", _fail)

    fs = fsspec.filesystem("file")
    return Case(LocalStore(tmp_path / "store"), fs, str(tmp_path / "store"), break_rename)


def memory_case(tmp_path: Path) -> Case:
    root = f"/regrow-test-{uuid.uuid4().hex}"
    store = FsspecStore(f"memory://{root}")

    def break_rename(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(store.fs, "mv", _fail)

    return Case(store, store.fs, root, break_rename)


def fsspec_file_case(tmp_path: Path) -> Case:
    store = FsspecStore(f"file://{tmp_path}/store")

    def break_rename(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(store.fs, "mv", _fail)

    return Case(store, store.fs, str(tmp_path / "store"), break_rename)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3 (moto's server) on a free port, with one bucket, for the whole session."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
        region_name="us-east-1",
    ).create_bucket(Bucket="regrow-test")  # fmt: skip
    # As a user configures s3fs for every process (or FSSPEC_S3_ENDPOINT_URL etc.): a store's
    # URL alone then reopens it anywhere, as workers do.
    saved = fsspec.config.conf.get("s3")
    fsspec.config.conf["s3"] = {"endpoint_url": endpoint, "key": "test", "secret": "test"}
    yield endpoint
    if saved is None:
        fsspec.config.conf.pop("s3", None)
    else:
        fsspec.config.conf["s3"] = saved
    server.stop()


def s3_case(tmp_path: Path, endpoint: str) -> Case:
    root = f"regrow-test/{uuid.uuid4().hex}"
    store = FsspecStore(f"s3://{root}")

    def break_rename(monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(store.fs, "mv", _fail)

    return Case(store, store.fs, root, break_rename)


FACTORIES = {"local": local_case, "memory": memory_case, "fsspec-file": fsspec_file_case}


@pytest.fixture(params=[*sorted(FACTORIES), "s3"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    if request.param == "s3":
        made = s3_case(tmp_path, request.getfixturevalue("s3_endpoint"))
    else:
        made = FACTORIES[request.param](tmp_path)
    yield made
    if "memory" in made.fs.protocol and made.fs.exists(made.root):
        made.fs.rm(made.root, recursive=True)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_returns_the_sha256_and_get_returns_the_bytes(case: Case) -> None:
    key = case.store.put(b"fitted model")
    assert key == sha(b"fitted model")
    assert case.store.get(key) == b"fitted model"
    assert case.store.exists(key)
    assert case.store.size(key) == len(b"fitted model")
    assert case.fs.cat_file(case.path(key)) == b"fitted model"  # the documented layout


def test_empty_and_bytes_like_payloads(case: Case) -> None:
    assert case.store.get(case.store.put(b"")) == b""
    assert case.store.put(bytearray(b"ab")) == case.store.put(memoryview(b"ab")) == sha(b"ab")
    with pytest.raises(StoreError, match="put\\(\\) stores bytes \\(got a str\\)"):
        case.store.put("text")  # type: ignore[arg-type]


def test_put_is_idempotent_and_does_not_rewrite(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = case.store.put(b"same")
    modified = case.fs.modified(case.path(key)) if case.fs.protocol != "memory" else None

    def no_write() -> Any:
        raise AssertionError("an existing artifact was written again")

    monkeypatch.setattr(case.store, "_open_temp", no_write)
    assert case.store.put(b"same") == key
    if modified is not None:
        assert case.fs.modified(case.path(key)) == modified


def test_put_file_streams_a_file(case: Case, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 5)  # several chunks
    source.write_bytes(data)
    key = case.store.put_file(source)
    assert key == sha(data)
    assert case.store.get(key) == data
    assert case.store.put_file(str(source)) == key
    assert case.temp_files() == []


def test_put_file_of_a_missing_file_raises_file_not_found(case: Case, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        case.store.put_file(tmp_path / "missing.bin")


def test_a_tampered_artifact_is_detected_on_read(case: Case) -> None:
    key = case.store.put(b"original")
    case.fs.pipe_file(case.path(key), b"tampered")
    with pytest.raises(ArtifactCorrupted) as caught:
        case.store.get(key)
    message = str(caught.value)
    assert key in message
    assert sha(b"tampered") in message
    assert "restore it from a backup" in message
    with pytest.raises(ArtifactCorrupted), case.store.open_local(key):
        pass


def test_a_truncated_artifact_is_replaced_by_the_next_put(case: Case) -> None:
    key = case.store.put(b"complete payload")
    case.fs.pipe_file(case.path(key), b"compl")
    assert case.store.put(b"complete payload") == key
    assert case.store.get(key) == b"complete payload"


def flip_byte(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_put_replaces_an_altered_artifact_of_the_same_size(case: Case) -> None:
    key = case.store.put(b"fitted weights")
    case.fs.pipe_file(case.path(key), flip_byte(b"fitted weights", 3))  # same size
    assert case.store.put(b"fitted weights") == key
    assert case.store.get(key) == b"fitted weights"
    assert case.temp_files() == []


def test_put_file_replaces_an_altered_artifact_of_the_same_size(case: Case, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"a fitted model")
    key = case.store.put_file(source)
    case.fs.pipe_file(case.path(key), flip_byte(b"a fitted model", 0))
    assert case.store.put_file(source) == key
    assert case.store.digest(key) == key


def test_every_write_is_read_back_and_refused_when_it_differs(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = case.store._commit

    def commit_and_damage(temp: str, key: str) -> None:
        commit(temp, key)
        case.fs.pipe_file(case.path(key), b"not what was written")

    monkeypatch.setattr(case.store, "_commit", commit_and_damage)
    with pytest.raises(StoreError, match=r"could not store 7 bytes .* reads back as"):
        case.store.put(b"payload")
    monkeypatch.undo()
    assert not case.store.exists(sha(b"payload"))  # the bad file is not left under the key
    assert case.temp_files() == []


def test_sizes_answers_for_many_keys_in_one_batched_call(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [case.store.put(f"artifact {i}".encode()) for i in range(6)]
    absent = sha(b"never stored")
    case.fs.rm_file(case.path(keys[0]))  # removed behind the store's back
    if isinstance(case.store, FsspecStore):  # one listing per key prefix, no request per key

        def no_single_lookups(*args: Any) -> Any:
            raise AssertionError("sizes() asked for one key at a time")

        monkeypatch.setattr(case.store, "_size", no_single_lookups)
    sizes = case.store.sizes([*keys, absent, keys[1]])
    assert sizes == {keys[0]: None, **{k: len(b"artifact 0") for k in keys[1:]}, absent: None}
    assert case.store.exists_many([keys[0], keys[1]]) == {keys[0]: False, keys[1]: True}
    assert case.store.sizes([]) == {}
    with pytest.raises(InvalidKey):
        case.store.sizes(["../x"])


def test_digest_hashes_what_is_stored(case: Case) -> None:
    key = case.store.put(b"original")
    assert case.store.digest(key) == key
    case.fs.pipe_file(case.path(key), b"tampered")
    assert case.store.digest(key) == sha(b"tampered")
    with pytest.raises(ArtifactNotFound):
        case.store.digest(sha(b"absent"))


def test_list_files_finds_every_artifact_and_leftover_temporary_file(case: Case) -> None:
    keys = {case.store.put(b"one"), case.store.put(b"two")}
    _, handle = case.store._open_temp()  # a write that crashed before its rename
    with handle:
        handle.write(b"half")
    case.fs.pipe_file(f"{case.root}/README", b"someone else's file")
    files = list(case.store.list_files())
    assert {f.key for f in files if f.key} == keys
    assert {f.path for f in files if f.key} == {f"{k[:2]}/{k}" for k in keys}
    (leftover,) = [f for f in files if f.key is None]
    assert leftover.path.startswith("tmp/")
    assert leftover.path.endswith(".part")
    assert leftover.size == 4
    assert all(f.modified is not None for f in files)
    case.store.remove_temp(leftover.path)
    assert case.temp_files() == []
    with pytest.raises(InvalidKey, match="invalid temporary file"):
        case.store.remove_temp("README")


@pytest.mark.parametrize(
    "key",
    ["../x", "A" * 64, "ab" * 31, "ab" * 33, "g" * 64, f"../{'a' * 61}", "a" * 63 + "/", 42, None],
)
def test_invalid_keys_are_refused_everywhere(case: Case, key: Any) -> None:
    for operation in (
        case.store.get,
        case.store.exists,
        case.store.size,
        case.store.delete,
        case.store.open_local,
    ):
        with pytest.raises(InvalidKey, match="invalid artifact key"):
            operation(key)


def test_a_missing_key_raises_artifact_not_found(case: Case) -> None:
    key = sha(b"never stored")
    with pytest.raises(ArtifactNotFound, match=f"no artifact {key} in"):
        case.store.get(key)
    with pytest.raises(ArtifactNotFound):
        case.store.size(key)
    with pytest.raises(LookupError), case.store.open_local(key):
        pass
    assert not case.store.exists(key)


def test_delete_removes_and_tolerates_missing(case: Case) -> None:
    key = case.store.put(b"short lived")
    case.store.delete(key)
    assert not case.store.exists(key)
    case.store.delete(key)


def test_no_temporary_files_are_left_behind(case: Case) -> None:
    for i in range(5):
        case.store.put(f"artifact {i}".encode())
    case.store.put(b"artifact 0")
    assert case.temp_files() == []


def test_a_failed_rename_leaves_nothing_under_the_key(
    case: Case, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    case.break_rename(monkeypatch)
    with pytest.raises(StoreError, match=r"could not store 7 bytes in .*simulated crash"):
        case.store.put(b"payload")
    source = tmp_path / "f.bin"
    source.write_bytes(b"file payload")
    with pytest.raises(StoreError, match=r"could not store '.*f\.bin'"):
        case.store.put_file(source)
    monkeypatch.undo()
    assert not case.store.exists(sha(b"payload"))
    assert not case.fs.exists(case.path(sha(b"payload")))
    assert not case.fs.exists(case.path(sha(b"file payload")))
    assert case.temp_files() == []
    assert case.store.put(b"payload") == sha(b"payload")  # and the store still works


def test_a_failure_mid_write_leaves_nothing_behind(case: Case) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"first half"
        raise RuntimeError("the producer died")

    with pytest.raises(RuntimeError, match="the producer died"):
        case.store._write(chunks(), "a stream")
    assert case.temp_files() == []
    assert not case.store.exists(sha(b"first half"))


def test_open_local_gives_a_verified_local_file(case: Case) -> None:
    key = case.store.put(b"weights")
    with case.store.open_local(key) as path:
        assert Path(path).read_bytes() == b"weights"


def test_the_url_reopens_the_same_store(case: Case) -> None:
    key = case.store.put(b"shared")
    assert open_store(case.store.url).get(key) == b"shared"
    assert repr(case.store) == f"{type(case.store).__name__}({case.store.url!r})"


# No deadline: each example is a store round trip (on S3, two HTTP requests to the moto
# server), whose time depends on how busy the machine is, not on the code under test.
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.binary(max_size=4096))
def test_any_bytes_round_trip(case: Case, data: bytes) -> None:
    key = case.store.put(data)
    assert key == sha(data)
    assert case.store.get(key) == data


# -- opening stores by URL ------------------------------------------------------------------


def test_open_store_picks_the_implementation(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path), LocalStore)
    assert isinstance(open_store(str(tmp_path / "a")), LocalStore)
    local = open_store(f"file://{tmp_path}/b")
    assert isinstance(local, LocalStore)
    assert local.url == str(tmp_path / "b")
    assert isinstance(open_store("memory://regrow-open-store"), FsspecStore)


def test_registered_protocols_use_their_factory(tmp_path: Path) -> None:
    register_store("regrowtest", lambda url: LocalStore(tmp_path / url.split("://")[1]))
    store = open_store("regrowtest://x")
    assert isinstance(store, LocalStore)
    assert store.url == str(tmp_path / "x")


def test_bad_urls_are_refused() -> None:
    with pytest.raises(ConfigError, match="must be a non-empty string \\(got ''\\)"):
        open_store("")
    with pytest.raises(ConfigError, match="cannot open the artifact store 'nosuchproto://x'"):
        open_store("nosuchproto://x")


def test_the_local_store_creates_its_folder_on_first_write(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "deep" / "store", fsync=False)
    assert not (tmp_path / "deep").exists()
    key = store.put(b"x")
    assert (tmp_path / "deep" / "store" / key[:2] / key).read_bytes() == b"x"


def test_a_workspace_trains_and_loads_with_its_artifacts_on_s3(
    s3_endpoint: str, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    from regrow import Member, System, Workspace
    from regrow.demo import make_window

    url = f"s3://regrow-test/ws-{uuid.uuid4().hex}"
    with Workspace.init(tmp_path / "ws", store_url=url) as ws:
        assert ws.store.url == url
        snap = ws.snapshot(make_window(300, start="2026-01-01", days=10, seed=0), name="w")
        member = Member("m", LogisticRegression(), inputs=["tenure_months", "monthly_fee"])
        system = System("s3", target="churned", components=[member])
        result = ws.train(system, snap)
        assert result.trained == ["m"]
        assert ws.load(result.version.ref).predict(ws.frame(snap.id)).shape == (300,)
        keys = ws.store.fs.find(url.removeprefix("s3://"))
    assert len(keys) == 2  # the snapshot's Parquet and the fitted member
