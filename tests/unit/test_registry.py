from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from camelid.errors import RegistryError
from camelid.registry import Registry, config_hash


def _publish(reg: Registry, name: str, payload: str = "x", **kw):
    with reg.publish(name, kw.pop("kind", "dataset"), config=kw.pop("config", {"a": 1}), **kw) as pub:
        (pub.dir / "data.txt").write_text(payload)
        pub.metrics["n"] = len(payload)
    return pub.artifact


def test_publish_versions_aliases_and_refs(tmp_path):
    reg = Registry(tmp_path)
    a1 = _publish(reg, "prefs", "one")
    a2 = _publish(reg, "prefs", "two!")
    assert (a1.ref, a2.ref) == ("prefs@v1", "prefs@v2")
    assert reg.resolve("prefs").ref == "prefs@v2"  # latest
    assert reg.resolve("prefs@v1").hash == a1.hash != a2.hash
    reg.set_alias("prefs", "best", "v1")
    assert reg.resolve("prefs@best").ref == "prefs@v1"
    m = a2.manifest
    assert m["kind"] == "dataset" and m["metrics"] == {"n": 4}
    assert m["config_hash"] == config_hash({"a": 1})
    assert {"torch", "transformers", "trl"} <= set(m["libraries"])
    assert not list((tmp_path / ".staging").iterdir())


def test_manifest_records_inputs_for_lineage(tmp_path):
    reg = Registry(tmp_path)
    base = _publish(reg, "base", kind="base")
    sft = _publish(reg, "sft", kind="sft", inputs={"model": base})
    assert sft.manifest["inputs"]["model"] == base.input_record()
    lin = reg.lineage("sft")
    assert [(d, r, a.ref) for d, r, a in lin] == [(0, "", "sft@v1"), (1, "model", "base@v1")]
    # find_matching: same config and input hashes -> the artifact; another input -> nothing
    assert reg.find_matching("sft", config_hash({"a": 1}), {"model": base}).ref == "sft@v1"
    base2 = _publish(reg, "base", "other", kind="base")
    assert reg.find_matching("sft", config_hash({"a": 1}), {"model": base2}) is None
    assert reg.find_matching("sft", config_hash({"a": 2}), {"model": base}) is None


def test_exception_during_publish_leaves_nothing(tmp_path):
    reg = Registry(tmp_path)
    _publish(reg, "sft")
    with pytest.raises(RuntimeError), reg.publish("sft", "sft", config={}) as pub:
        (pub.dir / "half.bin").write_bytes(b"0" * 100)
        raise RuntimeError("training crashed")
    assert reg.versions("sft") == ["v1"]
    assert reg.aliases("sft") == {"latest": "v1"}
    assert not list((tmp_path / ".staging").iterdir())


def test_kill_during_publish_leaves_nothing_visible(tmp_path):
    script = textwrap.dedent(f"""
        import os, time
        from camelid.registry import Registry
        reg = Registry({str(tmp_path)!r})
        with reg.publish("sft", "sft", config={{}}) as pub:
            (pub.dir / "weights.bin").write_bytes(b"0" * 1000)
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reg = Registry(tmp_path)
    assert reg.versions("sft") == [] and reg.names() == []
    with pytest.raises(RegistryError, match="unknown reference 'sft'"):
        reg.resolve("sft")
    # the leftover staging folder is what gc removes
    assert len(reg.gc().removed) == 1 and not list((tmp_path / ".staging").iterdir())


def test_unknown_ref_lists_what_exists(tmp_path):
    reg = Registry(tmp_path)
    _publish(reg, "sft")
    _publish(reg, "rm-safety")
    with pytest.raises(RegistryError) as e:
        reg.resolve("ppo")
    assert "rm-safety (v1; latest=v1)" in str(e.value) and "sft (v1" in str(e.value)
    with pytest.raises(RegistryError, match="unknown version sft@v9: sft has v1"):
        reg.resolve("sft@v9")
    with pytest.raises(RegistryError, match="unknown alias 'best'"):
        reg.resolve("sft@best")


@pytest.mark.parametrize("name", ["../evil", "a/../../b", ".hidden", "UPPER", "", "a b", "..", "x/y"])
def test_traversal_and_bad_names_rejected(tmp_path, name):
    reg = Registry(tmp_path)
    with pytest.raises(RegistryError):
        with reg.publish(name, "dataset", config={}):
            pass
    assert not any(p.name != ".staging" for p in tmp_path.iterdir())


def test_bad_ref_names_rejected(tmp_path):
    reg = Registry(tmp_path)
    for ref in ["sft@../../etc", "sft@v1/../x"]:
        with pytest.raises(RegistryError):
            reg.resolve(ref)


def test_external_refs(tmp_path):
    reg = Registry(tmp_path / "reg")
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    p = reg.resolve(str(model_dir))
    assert p.external == "path" and p.model_path == str(model_dir) and p.hash.startswith("path:")
    h = reg.resolve("meta-llama/Llama-2-7b-hf")
    assert h.external == "hub" and h.model_path == "meta-llama/Llama-2-7b-hf"
    assert reg.resolve("hf:gpt2").model_path == "gpt2"
    with pytest.raises(RegistryError, match="does not exist"):
        reg.resolve("./no/such/dir")


def test_pins_override_latest(tmp_path):
    reg = Registry(tmp_path)
    _publish(reg, "sft", "a")
    _publish(reg, "sft", "b")
    reg.pin("sft", "v1")
    assert reg.resolve("sft").ref == "sft@v1"
    assert reg.resolve("sft@v2").ref == "sft@v2"


def test_aliases_file_is_json_and_holds_only_set_aliases(tmp_path):
    reg = Registry(tmp_path)
    _publish(reg, "sft")
    assert not (tmp_path / "sft" / "aliases.json").exists()  # latest is derived, never stored
    reg.set_alias("sft", "best", "v1")
    assert json.loads((tmp_path / "sft" / "aliases.json").read_text()) == {"best": "v1"}
    assert reg.aliases("sft") == {"best": "v1", "latest": "v1"}
