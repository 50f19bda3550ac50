"""OpenAssistant, in its three layouts:

- conversation rows: ``{conversation: [{role: prompter|assistant, text}], message?: {final assistant msg}}``
- tree rows (``*.trees.jsonl``): ``{message_tree_id, prompt: {text, role, replies: [...]}}``
- flat message rows (the Hub's oasst1/oasst2): ``{message_id, parent_id, text, role, rank?}``, rebuilt
  into trees by ``combine``.

From a tree: SFT follows the best-ranked reply at each step (``options.paths: all`` takes every
path that ends in an assistant message); pairs put the best-ranked reply against the worst-ranked one
under each prompter message; prompts are the root messages. Deleted, review-failed and synthetic
(model-written) messages are left out, with everything under them, and counted.
"""

from __future__ import annotations

from typing import Any

from camelid.data.adapters.base import Adapter, Ctx, Dropped, KindError, need, structured, text
from camelid.data.records import PreferencePair, Prompt, SFTExample
from camelid.errors import DataError

_ROLES = {"prompter": "user", "user": "user", "assistant": "assistant"}


def _message(node: Any, name: str) -> dict:
    if not isinstance(node, dict):
        raise DataError(f"field '{name}': must be an object with 'role' and 'text'")
    role = _ROLES.get(node.get("role"))
    if role is None:
        raise DataError(f"field '{name}.role': must be 'prompter' or 'assistant', got {node.get('role')!r}")
    return {"role": role, "content": text(node, "text") if "text" in node else text(node, "content")}


def _from_conversation(row: dict, ctx: Ctx) -> list:
    turns = [_message(t, f"conversation[{i}]") for i, t in enumerate(structured(row, "conversation", list))]
    if isinstance(row.get("message"), dict):  # the final assistant message is stored on its own
        reason = _left_out(row["message"])
        if reason:
            raise Dropped(reason)
        turns.append(_message(row["message"], "message"))
    rid = str(row.get("message_tree_id") or ctx.row_id(row))
    if ctx.kind == "pairs":
        raise KindError("oasst conversation rows have no ranked alternatives, so no pairs: pairs need "
                        "OASST message trees (or flat messages with 'rank')")
    if ctx.kind == "prompts":
        first = next((i for i, m in enumerate(turns) if m["role"] == "user"), None)
        if first is None:
            raise DataError("field 'conversation': has no prompter turn")
        return [Prompt(messages=turns[: first + 1], category=ctx.option("category"), source=ctx.source, id=rid,
                       is_safety=bool(ctx.option("is_safety", False)))]
    while turns and turns[-1]["role"] != "assistant":
        turns.pop()
    if not turns:
        raise Dropped("no assistant reply")
    if not turns[-1]["content"].strip():
        raise Dropped("empty assistant response")
    return [SFTExample(messages=turns, source=ctx.source, id=rid)]


def _left_out(node: dict) -> str | None:
    """Why a message does not belong in training data (None: it does)."""
    if node.get("deleted") or node.get("review_result") is False:
        return "deleted or review-failed message"
    if node.get("synthetic") is True:  # written by a model, not by a volunteer
        return "synthetic message"
    return None


def _size(node: dict) -> int:
    return 1 + sum(_size(r) for r in node.get("replies") or [] if isinstance(r, dict))


def prune(node: dict, where: str = "") -> list[Dropped]:
    """Remove left-out replies (and everything under them) in place; one `Dropped` per removed subtree."""
    kept, notes = [], []
    for reply in node.get("replies") or []:
        reason = _left_out(reply) if isinstance(reply, dict) else None
        if reason:
            n, at = _size(reply), reply.get("_where", where)  # flat messages know their own line
            notes.append(Dropped(reason, f"{at}: message {reply.get('message_id', '?')}: {reason}"
                                 + (f" (with {n - 1} message(s) under it)" if n > 1 else ""), at, n))
        else:
            kept.append(reply)
            if isinstance(reply, dict):
                notes += prune(reply, where)
    node["replies"] = kept
    return notes


def _ranked(replies: list[dict]) -> list[dict]:
    live = [r for r in replies if isinstance(r, dict)]
    return sorted(live, key=lambda r: (r.get("rank") is None, r.get("rank") or 0))


def _paths(node: dict, prefix: list[dict], top_only: bool):
    msgs = [*prefix, _message(node, "prompt")]
    replies = _ranked(node.get("replies") or [])
    if not replies:
        yield msgs
    for reply in replies[:1] if top_only else replies:
        yield from _paths(reply, msgs, top_only)


def _pairs(node: dict, prefix: list[dict], ctx: Ctx, rid: str):
    msgs = [*prefix, _message(node, "prompt")]
    replies = _ranked(node.get("replies") or [])
    ranked = [r for r in replies if r.get("rank") is not None and str(r.get("text", "")).strip()]
    if msgs[-1]["role"] == "user" and len(ranked) >= 2 and ranked[0]["text"] != ranked[-1]["text"]:
        yield PreferencePair(prompt=msgs, chosen=ranked[0]["text"], rejected=ranked[-1]["text"],
                             rating=ctx.rating(), category=ctx.option("category"), source=ctx.source,
                             id=f"{rid}/{ranked[0].get('message_id', len(msgs))}")
    for reply in replies:
        yield from _pairs(reply, msgs, ctx, rid)


def records_from_tree(root: dict, rid: str, ctx: Ctx, where: str = "") -> list:
    if not isinstance(root, dict):
        raise DataError("field 'prompt': must be the root message object of the tree")
    return [*prune(root, where), *_tree_records(root, rid, ctx, where)]


def _tree_records(root: dict, rid: str, ctx: Ctx, where: str) -> list:
    if ctx.kind == "prompts":
        msg = _message(root, "prompt")
        if msg["role"] != "user":
            raise DataError("field 'prompt.role': the root of a tree must be a prompter message")
        return [Prompt(messages=[msg], category=ctx.option("category"), source=ctx.source, id=rid,
                       is_safety=bool(ctx.option("is_safety", False)))]
    if ctx.kind == "pairs":
        out = list(_pairs(root, [], ctx, rid))
        return out or [Dropped("no ranked replies to pair", where=where)]
    top_only = ctx.option("paths", "top", ("top", "all")) == "top"
    out = []
    for i, path in enumerate(_paths(root, [], top_only)):
        while path and path[-1]["role"] != "assistant":
            path = path[:-1]
        if not path or not path[-1]["content"].strip():
            out.append(Dropped("no assistant reply", where=where))
            continue
        out.append(SFTExample(messages=path, source=ctx.source, id=rid if top_only else f"{rid}/{i}"))
    return out


def convert(row: dict, ctx: Ctx) -> list:
    if "conversation" in row:
        return _from_conversation(row, ctx)
    if isinstance(row.get("prompt"), dict):
        return records_from_tree(row["prompt"], str(row.get("message_tree_id") or ctx.row_id(row)), ctx, ctx.where)
    need(row, "message_id"), need(row, "role"), text(row, "text")
    return [{"flat": dict(row)}]  # flat message: trees are rebuilt in combine


def combine(items: list[tuple[str, Any]], ctx: Ctx):
    nodes = {str(it["flat"]["message_id"]): {**it["flat"], "replies": [], "_where": where} for where, it in items}
    where_of = {str(it["flat"]["message_id"]): where for where, it in items}
    roots = []
    for mid, node in nodes.items():
        parent = node.get("parent_id")
        if parent in (None, ""):
            roots.append(mid)
        elif str(parent) in nodes:
            nodes[str(parent)]["replies"].append(node)
        else:
            yield Dropped("parent message not in the data", where=where_of[mid])
    for mid in roots:
        root = nodes[mid]
        reason = _left_out(root)
        if reason:
            yield Dropped(f"{reason} (a tree's root)", where=where_of[mid], n=_size(root))
            continue
        tree_id = str(root.get("message_tree_id") or mid)
        yield from records_from_tree(root, tree_id, ctx, where_of[mid])


def _detect(keys: set[str]) -> bool:
    return "conversation" in keys or ("message_tree_id" in keys and "prompt" in keys) or \
        {"message_id", "parent_id", "text", "role"} <= keys


ADAPTERS = [Adapter("oasst", ("sft", "prompts", "pairs"), convert, _detect,
                    "OpenAssistant: conversation rows, message trees, or flat messages (message_id, parent_id)",
                    combine=combine, combine_kinds=("sft", "prompts", "pairs"))]
