"""Processed-dataset cache: what the key depends on, build-once, atomic writes."""

import pytest

from camelid.data.cache import cache_key, cache_root, cached
from camelid.data.spec import DataSpec
from camelid.errors import DataError


class FakeTokenizer:
    def __init__(self, vocab, name="tok"):
        self.vocab, self.name_or_path, self.special_tokens_map = vocab, name, {"eos_token": "</s>"}

    def get_vocab(self):
        return dict(self.vocab)


def test_key_changes_with_each_input():
    spec, tok = DataSpec(format="gsm8k", path="x.jsonl"), FakeTokenizer({"a": 0, "b": 1})
    base = cache_key(spec, tokenizer=tok, chat_template="llama2", code="1")
    assert base == cache_key(spec, tokenizer=FakeTokenizer({"b": 1, "a": 0}), chat_template="llama2", code="1")
    variants = [
        cache_key(spec.model_copy(update={"n": 5}), tokenizer=tok, chat_template="llama2", code="1"),
        cache_key(spec, tokenizer=FakeTokenizer({"a": 0, "c": 1}), chat_template="llama2", code="1"),
        cache_key(spec, tokenizer=FakeTokenizer({"a": 0, "b": 1}, name="other"), chat_template="llama2", code="1"),
        cache_key(spec, tokenizer=tok, chat_template="{{ messages }}", code="1"),
        cache_key(spec, tokenizer=tok, chat_template="llama2", code="2"),
        cache_key([spec, spec], tokenizer=tok, chat_template="llama2", code="1"),
        cache_key(spec, tokenizer=tok, chat_template="llama2", code="1", extra={"max_length": 64}),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert len(base) == 32
    assert cache_key(spec) == cache_key(spec)  # default code version is deterministic


def test_cache_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CAMELID_CACHE", str(tmp_path))
    assert cache_root() == tmp_path / "datasets"
    monkeypatch.delenv("CAMELID_CACHE")
    assert str(cache_root()).endswith(".cache/camelid/datasets")


def test_cached_builds_once_and_leaves_no_temp(monkeypatch, tmp_path):
    import datasets

    monkeypatch.setenv("CAMELID_CACHE", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return datasets.Dataset.from_dict({"input_ids": [[1, 2], [3]]})

    key = cache_key(DataSpec(), code="t")
    first = cached(key, build)
    second = cached(key, build)
    assert calls == [1] and second["input_ids"] == [[1, 2], [3]] == first["input_ids"]
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir()) == [key]


def test_failed_build_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("CAMELID_CACHE", str(tmp_path))

    def boom():
        raise RuntimeError("tokenizer exploded")

    key = cache_key(DataSpec(), code="t")
    with pytest.raises(RuntimeError):
        cached(key, boom)
    assert not (tmp_path / "datasets" / key).exists()
    with pytest.raises(TypeError, match="must return a datasets.Dataset"):
        cached(key, lambda: [1, 2])
    assert list((tmp_path / "datasets").glob("*")) == []


def test_bad_key_is_refused(tmp_path):
    with pytest.raises(DataError, match="invalid cache key"):
        cached("../etc", lambda: None, root=tmp_path)
