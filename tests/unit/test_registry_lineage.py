"""Issue #29: `gc --keep` never breaks a kept artifact's lineage unless told to, and `verify` reports broken
lineage and a manifest whose artifact_hash disagrees with its files."""

from __future__ import annotations

import json

from camelid.cli import main
from camelid.registry import Artifact, Registry


def _publish(reg: Registry, name: str, payload: str, inputs: dict[str, Artifact] | None = None) -> Artifact:
    with reg.publish(name, "sft" if name != "base" else "base", config={"p": payload}, inputs=inputs) as pub:
        (pub.dir / "w.bin").write_text(payload)
    return pub.artifact


def _cli(reg: Registry, *args: str) -> int:
    return main(["registry", "--registry", str(reg.root), *args])


def _pipeline(tmp_path) -> Registry:
    """base@v1 <- sft@v1 <- ppo@v1 (latest ppo); sft@v2 built from nothing kept; sft@v3 latest."""
    reg = Registry(tmp_path)
    base = _publish(reg, "base", "b")
    sft1 = _publish(reg, "sft", "s1", {"model": base})
    _publish(reg, "sft", "s2", {"model": base})
    _publish(reg, "sft", "s3", {"model": base})
    _publish(reg, "ppo", "p1", {"policy": sft1})
    return reg


def test_gc_keep_spares_what_a_kept_artifact_was_built_from(tmp_path, capsys):
    reg = _pipeline(tmp_path)
    assert _cli(reg, "gc", "--keep", "1") == 0
    out = capsys.readouterr().out
    assert reg.versions("sft") == ["v1", "v3"]  # v2: nothing kept was built from it
    assert f"removed {reg.root / 'sft' / 'v2'}" in out
    assert f"kept {reg.root / 'sft' / 'v1'}: in the lineage of ppo@v1 (--drop-lineage removes it anyway)" in out
    assert all("(missing)" not in art.ref for _, _, art in reg.lineage("ppo"))
    assert _cli(reg, "verify") == 0


def test_gc_drop_lineage_removes_it_and_verify_reports_the_broken_lineage(tmp_path, capsys):
    reg = _pipeline(tmp_path)
    assert _cli(reg, "gc", "--keep", "1", "--drop-lineage", "--dry-run") == 0
    assert f"would remove {reg.root / 'sft' / 'v1'}" in capsys.readouterr().out
    assert reg.versions("sft") == ["v1", "v2", "v3"]
    assert _cli(reg, "gc", "--keep", "1", "--drop-lineage") == 0
    assert reg.versions("sft") == ["v3"]
    capsys.readouterr()
    assert _cli(reg, "verify") == 1
    out = capsys.readouterr().out
    assert "FAILED ppo@v1: lineage: input policy sft@v1 is missing" in out
    assert "ok sft@v3" in out and "1 of 3 artifact(s) failed" in out
    assert _cli(reg, "gc", "--drop-lineage") == 2
    assert "--drop-lineage only applies with --keep" in capsys.readouterr().err


def test_verify_reports_an_input_replaced_under_the_same_version(tmp_path, capsys):
    reg = _pipeline(tmp_path)
    manifest = reg.root / "sft" / "v1" / "manifest.json"
    m = json.loads(manifest.read_text())
    m["inputs"]["model"]["hash"] = "0123456789abcdef"  # built from another base@v1 than the one held now
    manifest.write_text(json.dumps(m))
    assert _cli(reg, "verify", "sft@v1") == 1
    assert "lineage: input model base@v1 is not the artifact sft@v1 was built from" in capsys.readouterr().out


def test_verify_recomputes_the_artifact_hash(tmp_path, capsys):
    reg = _pipeline(tmp_path)
    manifest = reg.root / "base" / "v1" / "manifest.json"
    m = json.loads(manifest.read_text())
    assert _cli(reg, "verify", "base") == 0
    m["artifact_hash"] = "0" * 16  # the per-file records still match: loading goes on
    manifest.write_text(json.dumps(m))
    assert reg.resolve("base").hash == "0" * 16
    capsys.readouterr()
    assert _cli(reg, "verify", "base") == 1
    out = capsys.readouterr().out
    assert "FAILED base@v1: manifest.json: artifact_hash 0000000000000000 does not match the files" in out
