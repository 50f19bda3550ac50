"""Chat templates. Llama 2's `[INST] <<SYS>>` format is the default.

The assistant part sits inside `{% generation %}...{% endgeneration %}` so TRL can compute the
assistant-token mask (loss on answers only). The leading space of an answer is INSIDE the block: if
it were outside, the space after `[/INST]` would become its own never-trained token for answers
that start with a word piece, while answers like "I'm ..." merge it into "ĠI" - the model then learns
that every answer starts with "I" (a refusal). See docs/design.md, "The chat-template trap".
"""

from __future__ import annotations

from functools import lru_cache

import jinja2
from jinja2.ext import Extension

from camelid.errors import CamelidError

LLAMA2_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'] -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set system_message = none -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{%- if loop.index0 == 0 and system_message is not none -%}"
    "{{ bos_token + '[INST] <<SYS>>\\n' + system_message.strip() + '\\n<</SYS>>\\n\\n' + message['content'].strip() + ' [/INST]' }}"
    "{%- else -%}"
    "{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}"
    "{%- endif -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- generation -%}{{ ' ' + message['content'].strip() + ' ' + eos_token }}{%- endgeneration -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

TEMPLATES = {"llama2": LLAMA2_CHAT_TEMPLATE}


class _GenerationNoop(Extension):
    """Accept `{% generation %}` blocks outside transformers (renders their body unchanged)."""

    tags = {"generation"}

    def parse(self, parser):  # noqa: D401 - jinja API
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(extensions=[_GenerationNoop], trim_blocks=True, lstrip_blocks=True)


@lru_cache(maxsize=16)
def _compiled(template: str) -> jinja2.Template:
    # compiling costs ~100x a render: `camelid data stats` renders every record of a dataset
    return _environment().from_string(template)


def resolve_template(name_or_template: str | None, tokenizer=None) -> str:
    """'llama2' -> the built-in template; 'tokenizer' -> the tokenizer's own; anything else is jinja."""
    if name_or_template in (None, "llama2"):
        return LLAMA2_CHAT_TEMPLATE
    if name_or_template == "tokenizer":
        tmpl = getattr(tokenizer, "chat_template", None)
        if not tmpl:
            raise CamelidError("chat_template 'tokenizer' was asked for, but the tokenizer has none; use 'llama2'")
        return tmpl
    if "{%" in name_or_template or "{{" in name_or_template:
        return name_or_template
    raise CamelidError(f"unknown chat template {name_or_template!r}: use one of {', '.join(TEMPLATES)}, "
                       "'tokenizer', or a jinja template string")


def render(messages: list[dict], *, template: str | None = None, bos_token: str = "<s>",
           eos_token: str = "</s>", add_generation_prompt: bool = False) -> str:
    """Render messages to text without a tokenizer (previews, tests, prompt hashing)."""
    return _compiled(resolve_template(template)).render(messages=messages, bos_token=bos_token,
                                                        eos_token=eos_token,
                                                        add_generation_prompt=add_generation_prompt)
