"""Issue #17, registry part: gc vs live publishes, `latest` after a crash, stored hashes, broken entries."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from camelid.cli import main
from camelid.errors import RegistryError
from camelid.registry import Registry, config_hash


def _publish(reg: Registry, name: str, files: dict[str, bytes] | None = None, **kw):
    with reg.publish(name, kw.pop("kind", "sft"), config=kw.pop("config", {"a": 1}), **kw) as pub:
        for rel, data in (files or {"model/w.bin": b"weights"}).items():
            (pub.dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (pub.dir / rel).write_bytes(data)
    return pub.artifact


def _cli(reg: Registry, *args: str) -> int:
    return main(["registry", "--registry", str(reg.root), *args])


# ---- gc never removes a publish that is still being written -------------------------------------
def test_gc_during_concurrent_publishes_keeps_every_live_one(tmp_path, capsys):
    reg = Registry(tmp_path)
    started, release, errors = threading.Semaphore(0), threading.Event(), []

    def writer(i: int) -> None:
        try:
            with reg.publish("sft", "sft", config={"i": i}) as pub:
                (pub.dir / "part.txt").write_text("half")
                started.release()
                release.wait(30)
                (pub.dir / "done.txt").write_text("done")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for _ in threads:
        assert started.acquire(timeout=30)
    assert _cli(reg, "gc") == 0
    out = capsys.readouterr().out
    release.set()
    for t in threads:
        t.join(30)
    assert errors == []
    assert reg.versions("sft") == [f"v{i}" for i in range(1, 6)]
    assert all((reg.root / "sft" / v / "done.txt").is_file() for v in reg.versions("sft"))
    assert "0 removed" in out and out.count("still being written") == 5
    assert not list((tmp_path / ".staging").iterdir())  # each publish cleaned up its own lock


def test_gc_removes_staging_of_a_killed_publish_and_legacy_leftovers(tmp_path, capsys):
    script = textwrap.dedent(f"""
        import time
        from camelid.registry import Registry
        with Registry({str(tmp_path)!r}).publish("sft", "sft", config={{}}) as pub:
            (pub.dir / "w.bin").write_bytes(b"0" * 1000)
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (tmp_path / ".staging" / "0123legacy").mkdir()  # left by a version without writer locks
    reg = Registry(tmp_path)
    assert _cli(reg, "gc", "--dry-run") == 0
    assert "2 to remove" in capsys.readouterr().out
    assert _cli(reg, "gc") == 0
    assert "2 removed" in capsys.readouterr().out
    assert not list((tmp_path / ".staging").iterdir())


def test_gc_removes_symlinks_not_their_targets_and_reports_only_what_is_gone(tmp_path, capsys, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    reg = Registry(tmp_path / "reg")
    _publish(reg, "sft")
    (reg.root / ".staging").mkdir(exist_ok=True)
    (reg.root / ".staging" / "link").symlink_to(outside, target_is_directory=True)
    assert _cli(reg, "gc") == 0
    assert "removed " + str(reg.root / ".staging" / "link") in capsys.readouterr().out
    assert not os.path.lexists(reg.root / ".staging" / "link")
    assert (outside / "keep.txt").read_text() == "precious"
    # a folder that cannot be removed is reported as kept, never as removed
    (reg.root / ".staging" / "stuck").mkdir()
    monkeypatch.setattr("camelid.registry.files.shutil.rmtree", lambda *a, **k: None)
    assert _cli(reg, "gc") == 0
    out = capsys.readouterr().out
    assert "removed " + str(reg.root / ".staging" / "stuck") not in out and "0 removed" in out
    assert "kept " + str(reg.root / ".staging" / "stuck") in out


def test_gc_keep_negative_is_an_error(tmp_path, capsys):
    reg = Registry(tmp_path)
    _publish(reg, "sft", {"a": b"1"})
    _publish(reg, "sft", {"a": b"2"})
    assert _cli(reg, "gc", "--keep", "-1") == 2
    assert "--keep must be 0 or more" in capsys.readouterr().err
    assert reg.versions("sft") == ["v1", "v2"]
    with pytest.raises(RegistryError, match="keep must be 0 or more"):
        reg.gc(keep=-1)
    assert reg.gc(keep=0).removed == [reg.root / "sft" / "v1"] and reg.versions("sft") == ["v2"]


# ---- `latest` is what is published, not what the last alias write said -------------------------
def test_kill_after_rename_before_alias_write_still_resolves_newest(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal
        import camelid.registry as r
        reg = r.Registry({str(tmp_path)!r})
        with reg.publish("sft", "sft", config={{"v": 1}}) as pub:
            (pub.dir / "w.bin").write_bytes(b"1")
        real = r._write_json_atomic
        def die_on_aliases(path, obj):
            if path.name == "aliases.json":
                os.kill(os.getpid(), signal.SIGKILL)
            real(path, obj)
        r._write_json_atomic = die_on_aliases
        with reg.publish("sft", "sft", config={{"v": 2}}) as pub:
            (pub.dir / "w.bin").write_bytes(b"2")
    """)
    subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    reg = Registry(tmp_path)
    assert reg.versions("sft") == ["v1", "v2"]
    assert reg.resolve("sft").ref == "sft@v2"


def test_stale_latest_in_an_old_aliases_file_is_ignored(tmp_path, capsys):
    reg = Registry(tmp_path)
    _publish(reg, "sft", {"a": b"1"})
    _publish(reg, "sft", {"a": b"2"})
    (tmp_path / "sft" / "aliases.json").write_text('{"latest": "v1", "best": "v1"}')
    assert reg.resolve("sft").ref == "sft@v2"
    assert reg.resolve("sft@latest").ref == "sft@v2" and reg.resolve("sft@best").ref == "sft@v1"
    assert _cli(reg, "alias", "sft", "latest", "v1") == 2
    assert "'latest' always names the newest version" in capsys.readouterr().err


# ---- stored hashes are checked where artifacts are used ------------------------------------------
def test_manifest_stores_size_and_sha256_per_file(tmp_path):
    import hashlib

    art = _publish(Registry(tmp_path), "sft", {"model/w.bin": b"abc", "tok.json": b"{}"})
    files = art.manifest["files"]
    assert set(files) == {"model/w.bin", "tok.json"}
    assert files["model/w.bin"]["size"] == 3
    assert files["model/w.bin"]["sha256"] == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize("tamper, says", [
    (lambda d: (d / "model/w.bin").write_bytes(b"weights-but-longer"), "model/w.bin is 18 bytes, published as 7"),
    (lambda d: (d / "model/w.bin").write_bytes(b"WEIGHTS"), "model/w.bin differs from the published file"),
    (lambda d: (d / "model/w.bin").unlink(), "model/w.bin is missing"),
    (lambda d: (d / "model/extra.bin").write_bytes(b"x"), "model/extra.bin was added after publishing"),
])
def test_resolve_and_find_matching_refuse_changed_files(tmp_path, tamper, says):
    reg = Registry(tmp_path)
    art = _publish(reg, "sft")
    tamper(art.path)
    for call in (lambda: reg.resolve("sft"), lambda: reg.resolve("sft@v1"),
                 lambda: reg.find_matching("sft", config_hash({"a": 1}), {})):
        with pytest.raises(RegistryError, match="sft@v1") as e:
            call()
        assert says in str(e.value) and "\n" not in str(e.value)
    assert reg.resolve("sft", verify=False).ref == "sft@v1"  # inspection still works


def test_registry_verify_recomputes_full_hashes(tmp_path, capsys):
    reg = Registry(tmp_path)
    big = bytes(range(256)) * (12 << 10)  # 3 MiB: the fast check samples it, verify reads all of it
    _publish(reg, "sft", {"model/w.bin": big})
    _publish(reg, "base", {"model/w.bin": b"ok"}, kind="base")
    assert _cli(reg, "verify") == 0
    assert "ok sft@v1" in capsys.readouterr().out
    flipped = bytearray(big)
    flipped[len(big) // 2 + 12345] ^= 0xFF
    (reg.root / "sft" / "v1" / "model" / "w.bin").write_bytes(bytes(flipped))
    assert _cli(reg, "verify", "sft") == 1
    out = capsys.readouterr().out
    assert "FAILED sft@v1: model/w.bin: sha256 differs from the published one" in out
    assert _cli(reg, "verify") == 1
    out = capsys.readouterr().out
    assert "ok base@v1" in out and "FAILED sft@v1" in out and "1 of 2 artifact(s) failed" in out


def test_verify_falls_back_to_the_tree_hash_of_manifests_without_file_records(tmp_path, capsys):
    reg = Registry(tmp_path)
    art = _publish(reg, "sft")
    manifest = json.loads((art.path / "manifest.json").read_text())
    del manifest["files"]  # published before per-file records existed
    (art.path / "manifest.json").write_text(json.dumps(manifest))
    assert reg.resolve("sft").ref == "sft@v1" and _cli(reg, "verify", "sft@v1") == 0
    (art.path / "model" / "w.bin").write_bytes(b"WEIGHTS")
    assert _cli(reg, "verify", "sft@v1") == 1
    assert "FAILED sft@v1: files differ from the published artifact_hash" in capsys.readouterr().out


def test_camelid_run_does_not_call_a_tampered_artifact_up_to_date(micro, repo, capsys):
    cfg, reg = micro()
    args = ["run", "--only", "init", "--config", str(repo / "pipelines.yaml"), "--profile", "micro",
            "--registry", str(reg.root), "toy_base.eval_prompts=0", "--dry-run"]
    assert main(args) == 0
    weights = reg.resolve("base").path / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "base@v1" in err and "model/model.safetensors differs from the published file" in err


# ---- one broken entry never hides the healthy ones ----------------------------------------------
@pytest.mark.parametrize("text, reason", [
    ("{}", "manifest.json: missing field 'name'"),
    ("[]", "manifest.json: not a JSON object"),
    ('{"name": "sft", "vers', "manifest.json: not valid JSON"),
    ('{"name": 3, "version": "v2", "kind": "sft"}', "manifest.json: field 'name' must be a string"),
    ('{"name": "sft", "version": "v2", "kind": "sft", "inputs": []}', "manifest.json: field 'inputs'"),
])
def test_ls_lists_healthy_artifacts_and_marks_a_corrupt_manifest(tmp_path, capsys, text, reason):
    reg = Registry(tmp_path)
    _publish(reg, "sft", {"a": b"1"})
    _publish(reg, "sft", {"a": b"2"})
    _publish(reg, "base", kind="base")
    (tmp_path / "sft" / "v2" / "manifest.json").write_text(text)
    assert _cli(reg, "ls") == 0
    out = capsys.readouterr().out
    assert "sft@v1" in out and "base@v1" in out
    broken = next(line for line in out.splitlines() if "sft@v2" in line)
    assert "BROKEN" in broken and reason in broken
    with pytest.raises(RegistryError, match=reason.replace("(", r"\(")):
        reg.resolve("sft")
    assert reg.find_matching("sft", config_hash({"a": 1}), {}).ref == "sft@v1"
    assert _cli(reg, "verify", "sft@v2") == 1 and f"FAILED sft@v2: {reason}" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["[]", '{"best": ', '{"best": 3}'])
def test_ls_survives_a_corrupt_aliases_file(tmp_path, capsys, text):
    reg = Registry(tmp_path)
    _publish(reg, "sft")
    _publish(reg, "base", kind="base")
    (tmp_path / "sft" / "aliases.json").write_text(text)
    assert _cli(reg, "ls") == 0
    out = capsys.readouterr().out
    assert "sft@v1" in out and "base@v1" in out and "aliases.json" in out
    assert reg.resolve("sft").ref == "sft@v1"  # a bare name does not need the aliases file
    with pytest.raises(RegistryError, match="aliases.json"):
        reg.resolve("sft@best")
    with pytest.raises(RegistryError, match="aliases.json"):
        reg.set_alias("sft", "best", "v1")  # never overwrite what we could not read


def test_ls_marks_truncated_weights(tmp_path, capsys):
    reg = Registry(tmp_path)
    art = _publish(reg, "sft", {"model/model.safetensors": b"\x10" + b"\0" * 99})
    _publish(reg, "base", kind="base")
    with open(art.path / "model" / "model.safetensors", "r+b") as f:
        f.truncate(10)
    assert _cli(reg, "ls") == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "sft@v1" in line)
    assert "BROKEN" in line and "model/model.safetensors is 10 bytes, published as 100" in line
    assert "base@v1" in out


# ---- names, filesystems --------------------------------------------------------------------------
def test_overlong_name_is_a_registry_error(tmp_path, capsys):
    reg = Registry(tmp_path)
    with pytest.raises(RegistryError, match="300 characters"):
        _publish(reg, "a" * 300)
    with pytest.raises(RegistryError, match="300 characters"):
        reg.resolve("a" * 300)
    assert _cli(reg, "show", "a" * 300) == 2
    assert "300 characters" in capsys.readouterr().err


def test_rename_failure_says_what_happened(tmp_path, monkeypatch):
    reg = Registry(tmp_path)

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(src), None, str(dst))

    monkeypatch.setattr("camelid.registry.os.rename", cross_device)
    with pytest.raises(RegistryError) as e:
        _publish(reg, "sft")
    assert "different filesystems" in str(e.value) and "could not allocate" not in str(e.value)
    assert reg.versions("sft") == [] and not list((tmp_path / ".staging").iterdir())


def test_concurrent_set_alias_loses_no_alias(tmp_path):
    reg = Registry(tmp_path)
    _publish(reg, "sft")

    def setter(prefix: str) -> None:
        for i in range(40):
            reg.set_alias("sft", f"{prefix}{i}", "v1")

    threads = [threading.Thread(target=setter, args=(p,)) for p in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(json.loads((tmp_path / "sft" / "aliases.json").read_text())) == 120
