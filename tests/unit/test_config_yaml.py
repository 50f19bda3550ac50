"""Reading pipelines.yaml and key=value overrides: every mistake is one ConfigError with file, line and key (#17)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from camelid.cli import main
from camelid.config import list_profiles, load_config, parse_override, read_yaml
from camelid.errors import ConfigError


def _bomb_lines(levels: int) -> list[str]:
    """'Billion laughs': each level is a list of 9 aliases to the level before (9**levels strings)."""
    lines = ['  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return lines


def _bomb_file(tmp_path, levels: int = 9):
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(["x-bomb:", *_bomb_lines(levels),
                            "stages:", "  compare:", f"    checkpoints: *l{levels - 1}", ""]))
    return f


def _flow_bomb(levels: int = 9) -> str:
    """The same bomb on one line, as a key=value override value."""
    items = ['&l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    items += [f"&l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def test_duplicate_key_names_both_lines_and_key_path(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("registry: ./r\nstages:\n  sft:\n    learning_rate: 1.0e-5\n    max_steps: 3\n"
                 "    learning_rate: 3.0e-4\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}:6:5: duplicate key stages.sft.learning_rate")
    assert "first set on line 4" in msg and "\n" not in msg


def test_duplicate_key_inside_a_profile_and_at_top_level(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("profiles:\n  micro:\n    registry: ./a\n    registry: ./b\n")
    with pytest.raises(ConfigError, match=r"p.yaml:4:5: duplicate key profiles.micro.registry \(first set on line 3\)"):
        list_profiles(f)
    f.write_text("registry: ./a\nruns_dir: ./runs\nregistry: ./b\n")
    with pytest.raises(ConfigError, match=r"p.yaml:3:1: duplicate key registry \(first set on line 1\)"):
        read_yaml(f)


def test_duplicate_key_inside_a_list_item_names_the_index(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("items:\n  - {a: 1}\n  - {a: 1, b: 2, a: 3}\n")
    with pytest.raises(ConfigError, match=r"p.yaml:3:18: duplicate key items\[1\]\.a"):
        read_yaml(f)


def test_merge_key_overrides_and_small_anchors_still_load(tmp_path):
    # `<<: *base` then a key of its own is YAML's way to share settings between profiles, not a duplicate.
    f = tmp_path / "p.yaml"
    f.write_text("profiles:\n  micro: &base\n    description: small\n    registry: ./a\n"
                 "  other:\n    <<: *base\n    registry: ./b\n")
    assert read_yaml(f)["profiles"]["other"] == {"description": "small", "registry": "./b"}
    assert list_profiles(f) == {"micro": "small", "other": "small"}


def test_repo_pipelines_yaml_still_loads(repo):
    profiles = list_profiles(repo / "pipelines.yaml")
    assert {"micro", "tiny"} <= set(profiles)
    assert load_config(repo / "pipelines.yaml", "micro").profile == "micro"


def test_non_utf8_file_names_line_and_byte(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_bytes(b"registry: ./r\nruns_dir: ./caf\xe9\n")
    with pytest.raises(ConfigError, match=r"p.yaml:2:16: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"):
        load_config(f)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, not a config file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="is a directory"):
        list_profiles(tmp_path)


def test_alias_bomb_is_refused_at_read_time(tmp_path):
    f = _bomb_file(tmp_path)
    start = time.monotonic()
    with pytest.raises(ConfigError, match=r"bomb.yaml:6:\d+: alias \*l3 would expand past 10000 nodes"):
        read_yaml(f)
    assert time.monotonic() - start < 5


def test_alias_bomb_cli_exits_with_one_line(tmp_path):
    # Before #17 this ran for minutes building a multi-gigabyte error message.
    f = _bomb_file(tmp_path)
    out = subprocess.run([sys.executable, "-m", "camelid.cli", "config", "--config", str(f)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "alias *l3 would expand past" in out.stderr


def test_recursive_alias_is_refused(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("registry: ./r\nloop: &loop [1, *loop]\n")
    with pytest.raises(ConfigError, match=r"p.yaml:2:17: alias \*loop refers to a value that contains it"):
        read_yaml(f)


def test_deep_nesting_is_an_error_not_a_traceback(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("x: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"p.yaml:1:\d+: nested too deeply"):
        read_yaml(f)


def test_override_value_cannot_alias_bomb():
    start = time.monotonic()
    text = "stages.compare.checkpoints=" + _flow_bomb()
    with pytest.raises(ConfigError, match=r"^override '.*': alias \*l3 would expand past 10000 nodes"):
        parse_override(text)
    assert time.monotonic() - start < 5


def test_override_value_duplicate_key():
    with pytest.raises(ConfigError, match=r"^override 'stages.sft=\{a: 1, a: 2\}': duplicate key a;"):
        parse_override("stages.sft={a: 1, a: 2}")


def test_override_small_anchor_still_works():
    assert parse_override("stages.compare.checkpoints=[&s sft, *s]") == (["stages", "compare", "checkpoints"],
                                                                         ["sft", "sft"])


def test_override_invalid_yaml_is_one_line():
    with pytest.raises(ConfigError, match=r"^override 'a=\[1': invalid YAML: [^\n]+$"):
        parse_override("a=[1")


@pytest.mark.parametrize("text, what", [("profiles: [micro, tiny]\n", "'profiles' must be a mapping"),
                                        ("profiles:\n  micro: small\n", "profiles.micro must be a mapping")])
def test_list_profiles_rejects_malformed_profiles(tmp_path, capsys, text, what):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    assert main(["config", "--config", str(f), "--profiles"]) == 2
    assert what in capsys.readouterr().err


def test_control_character_is_one_line_with_position(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text('registry: ./r\nruns_dir: "x\x01"\n')
    with pytest.raises(ConfigError, match=r"^\S*p.yaml:2:13: invalid YAML: character U\+0001 is not allowed; remove it$"):
        read_yaml(f)


def test_second_document_says_what_was_expected(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("registry: ./r\n---\nruns_dir: ./x\n")
    with pytest.raises(ConfigError, match=r"p.yaml:2:1: invalid YAML: expected a single document in the stream, "
                                          r"but found another document$"):
        read_yaml(f)
