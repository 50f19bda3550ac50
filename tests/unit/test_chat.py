from __future__ import annotations

import pytest

from camelid.chat import render, resolve_template
from camelid.errors import CamelidError

CONV = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"}]


def test_llama2_format_exact():
    assert render(CONV) == ("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
                            "<s>[INST] 2+2? [/INST] 4 </s>")
    assert render(CONV[1:3]) == "<s>[INST] Hi [/INST] Hello! </s>"


def test_generation_prompt_is_the_prefix_of_the_answer():
    prompt = render(CONV[:4], add_generation_prompt=True)
    assert render(CONV).startswith(prompt) and prompt.endswith("[/INST]")


def test_unknown_template():
    with pytest.raises(CamelidError, match="unknown chat template 'chatml'"):
        resolve_template("chatml")


def test_render_compiles_each_template_once(monkeypatch):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    compiled = []
    original = ImmutableSandboxedEnvironment.from_string
    monkeypatch.setattr(ImmutableSandboxedEnvironment, "from_string",
                        lambda self, *a, **k: compiled.append(1) or original(self, *a, **k))
    custom = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    for _ in range(20):
        assert render(CONV[1:3]) == "<s>[INST] Hi [/INST] Hello! </s>"
        assert render(CONV[1:2], template=custom) == "<user>Hi"
    assert len(compiled) <= 2
