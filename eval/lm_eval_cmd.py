"""`camelid eval REF --tasks T[,T ...]`: standard benchmarks through lm-eval on a registry model, published as
an ``eval`` artifact whose input is the model (so `camelid compare` and the model card find it).

camelid writes no harness: the model and tokenizer camelid loads go to lm-eval's HFLM, and lm-eval's
``simple_evaluate`` runs its tasks (with the model's chat template unless --no-chat-template). A task is an
lm-eval task or group name (gsm8k, mmlu, truthfulqa_mc2, ja_leaderboard_jcommonsenseqa, ... — their data comes
from the Hub) or a task YAML file in lm-eval's format; a file's relative ``data_files`` are read from its
folder, so a task can travel with its data (tests/fixtures/lm_eval/).

    eval-<model>/vN/results.json    lm-eval's results, configs and versions (what it returns, minus samples)
                    samples.jsonl   with --samples: every document, prompt, answer and score
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from camelid.config.args import open_registry
from camelid.errors import CamelidError
from camelid.hf.export import add_registry_args
from camelid.log import get_logger
from camelid.registry import Artifact, Registry, config_hash
from camelid.stages import policy_kinds

log = get_logger("eval")


@dataclass
class TaskSpec:
    """One --tasks item: an lm-eval name, or a local YAML file (with its data's fingerprint)."""

    text: str
    path: Path | None = None

    @property
    def record(self) -> str:
        """How the task enters the artifact's config: its name, or the file's name and content hash."""
        return self.text if self.path is None else f"{self.path.name}@{self.fingerprint()[:16]}"

    def fingerprint(self) -> str:
        """sha256 over the YAML file and the data files it names (a changed file is another evaluation)."""
        h = hashlib.sha256(self.path.read_bytes())
        for f in data_files(self.path):
            h.update(f.name.encode() + f.read_bytes() if f.is_file() else f.name.encode())
        return h.hexdigest()


def parse_tasks(items: list[str]) -> list[TaskSpec]:
    """'a,b' and repeated --tasks -> specs; an existing .yaml/.yml path is a local task."""
    out = []
    for item in items:
        for text in (t.strip() for t in item.split(",")):
            if not text:
                continue
            path = Path(text).expanduser()
            if text.endswith((".yaml", ".yml")):
                if not path.is_file():
                    raise CamelidError(f"--tasks {text}: no such task file")
                out.append(TaskSpec(text, path.resolve()))
            else:
                out.append(TaskSpec(text))
    if not out:
        raise CamelidError("--tasks: name at least one lm-eval task (e.g. gsm8k) or a task YAML file")
    return out


def _raw_yaml(path: Path) -> dict:
    # lm-eval's own loader: it knows `!function` and `include`
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(path, resolve_func=True, recursive=True)


def data_files(path: Path) -> list[Path]:
    """The local files a task YAML's ``dataset_kwargs.data_files`` names, resolved against the YAML's folder."""
    files = ((_raw_yaml(path).get("dataset_kwargs") or {}).get("data_files")) or {}
    names = files.values() if isinstance(files, dict) else files if isinstance(files, list) else [files]
    out = []
    for n in names:
        for f in n if isinstance(n, list) else [n]:
            out.append(Path(f) if Path(f).is_absolute() else path.parent / f)
    return out


def local_task_config(path: Path) -> dict:
    """The YAML as lm-eval reads it, with relative data_files made absolute (from the YAML's folder)."""
    cfg = _raw_yaml(path)
    kwargs = cfg.get("dataset_kwargs") or {}
    files = kwargs.get("data_files")

    def fix(f):
        if isinstance(f, list):
            return [fix(x) for x in f]
        return f if Path(f).is_absolute() or "://" in str(f) else str(path.parent / f)

    if files is not None:
        kwargs["data_files"] = {k: fix(v) for k, v in files.items()} if isinstance(files, dict) else fix(files)
        cfg["dataset_kwargs"] = kwargs
    return cfg


def headline(results: dict) -> dict:
    """{task: {metric: value}} from lm-eval's results: 'acc,none' -> acc, 'exact_match,strict' ->
    'exact_match (strict)'; standard errors and bookkeeping left in results.json."""
    out = {}
    for task, row in results.get("results", {}).items():
        scores = {}
        for key, value in row.items():
            metric, _, filt = key.partition(",")
            if not filt or "_stderr" in metric or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            scores[metric if filt == "none" else f"{metric} ({filt})"] = float(value)
        if scores:
            out[task] = scores
    return out


class _DropModelObjectWarnings(logging.Filter):
    """HFLM warns that a model object (not a path) skips its loading options: camelid loaded it on purpose."""

    NEEDLES = ("is not of type `str`", "already-initialized model")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in self.NEEDLES)


def _quiet_model_object_warnings() -> None:
    lg = logging.getLogger("lm_eval.models.huggingface")
    if not any(isinstance(f, _DropModelObjectWarnings) for f in lg.filters):
        lg.addFilter(_DropModelObjectWarnings())


def run_lm_eval(model, tokenizer, tasks: list[TaskSpec], *, limit: float | None, num_fewshot: int | None,
                batch_size: int, chat_template: bool, samples: bool, seed: int = 0) -> dict:
    """lm-eval's simple_evaluate on an already-loaded model (its HFLM wrapper); returns what it returns."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    _quiet_model_object_warnings()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    named = [t.text for t in tasks if t.path is None]
    specs = [t.text if t.path is None else local_task_config(t.path) for t in tasks]
    manager = TaskManager(include_defaults=bool(named))  # indexing lm-eval's ~10k task files only when needed
    try:
        return lm_eval.simple_evaluate(
            model=lm, tasks=specs, task_manager=manager, limit=limit, num_fewshot=num_fewshot,
            apply_chat_template=chat_template and bool(getattr(tokenizer, "chat_template", None)),
            fewshot_as_multiturn=chat_template, log_samples=samples, bootstrap_iters=0, random_seed=seed,
            numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
    except KeyError as e:
        why = str(e.args[0] if e.args else e)[:300]
        raise CamelidError(f"lm-eval: {why} (give lm-eval's task and group names, e.g. gsm8k, mmlu, truthfulqa_mc2, "
                           "or a task YAML file)") from None
    except (ConnectionError, OSError) as e:
        offline = " (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") or \
            os.environ.get("HF_DATASETS_OFFLINE") else ""
        raise CamelidError(f"lm-eval could not load the data of {', '.join(named) or 'a task'}{offline}: "
                           f"{str(e).splitlines()[0][:200]}; named tasks download from the Hub: run with network, "
                           "or write a task YAML on local files (tests/fixtures/lm_eval/)") from None


def evaluate(ref: str, task_items: list[str], registry: Registry, *, name: str | None = None,
             limit: float | None = None, num_fewshot: int | None = None, batch_size: int = 8,
             chat_template: bool = True, samples: bool = False, device: str = "auto", force: bool = False) -> Artifact:
    """Run lm-eval's tasks on ``ref`` and publish the results as eval-<name>/vN (reused when already there)."""
    from importlib.metadata import version

    from camelid.models import load_causal_lm

    tasks = parse_tasks(task_items)
    art = registry.resolve(ref)
    if not art.external and art.kind not in (kinds := policy_kinds()):
        raise CamelidError(f"{art.ref} is a {art.kind} artifact; camelid eval runs chat models ({', '.join(kinds)})")
    out_name = name or f"eval-{art.name if not art.external else 'external'}"
    section = {"tasks": [t.record for t in tasks], "limit": limit, "num_fewshot": num_fewshot,
               "chat_template": chat_template, "samples": samples, "lm_eval": version("lm_eval")}
    if not force:
        done = registry.find_matching(out_name, config_hash(section), {"model": art})
        if done is not None:
            log.info("%s already holds these results for %s (--force runs again)", done.ref, art.ref)
            return done
    t0 = time.perf_counter()
    model, tok = load_causal_lm(art, device=device)
    results = run_lm_eval(model, tok, tasks, limit=limit, num_fewshot=num_fewshot, batch_size=batch_size,
                          chat_template=chat_template, samples=samples)
    rows = results.pop("samples", None) or {}
    metrics = {"tasks": headline(results), "n_samples": {t: v.get("effective", v.get("original"))
                                                        for t, v in (results.get("n-samples") or {}).items()},
               "seconds": round(time.perf_counter() - t0, 1)}
    fingerprints = {t.text: t.fingerprint() for t in tasks if t.path is not None}
    with registry.publish(out_name, "eval", config=section, inputs={"model": art}, data_fingerprints=fingerprints,
                          metrics=metrics) as pub:
        (pub.dir / "results.json").write_text(json.dumps(results, indent=2, default=str, ensure_ascii=False) + "\n")
        if rows:
            with open(pub.dir / "samples.jsonl", "w", encoding="utf-8") as f:
                for task, docs in rows.items():
                    for d in docs:
                        f.write(json.dumps({"task": task, **d}, default=str, ensure_ascii=False) + "\n")
    return pub.artifact


def table(art: Artifact) -> str:
    """task | metric | value, for the terminal."""
    rows = [(t, m, f"{v:.4f}") for t, s in sorted(art.manifest["metrics"]["tasks"].items()) for m, v in s.items()]
    w = [max(len(r[i]) for r in [("task", "metric", "value"), *rows]) for i in range(3)]
    return "\n".join(f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}" for a, b, c in [("task", "metric", "value"), *rows])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="camelid eval", description="Run lm-eval tasks on a model and publish the results as an eval artifact "
        "(input: the model); `camelid compare` and `camelid export`'s model card show them.")
    p.add_argument("ref", help="registry ref (sft, ppo@v2), local path or hf:id")
    p.add_argument("--tasks", action="append", required=True, metavar="T[,T...]",
                   help="lm-eval task/group names (gsm8k, mmlu, truthfulqa_mc2, ...) or task YAML files")
    p.add_argument("--limit", type=float, default=None, help="at most N documents per task (< 1: a fraction)")
    p.add_argument("--num-fewshot", type=int, default=None, help="few-shot examples (default: the task's)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-chat-template", action="store_true",
                   help="score raw text prompts (base-model style) instead of the model's chat template")
    p.add_argument("--samples", action="store_true", help="also keep every document's prompt, answer and score")
    p.add_argument("--name", default=None, help="registry name to publish under (default: eval-<model name>)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--force", action="store_true", help="run again even if these results are published")
    add_registry_args(p)
    args = p.parse_args(argv)
    limit = int(args.limit) if args.limit is not None and args.limit >= 1 else args.limit
    registry = open_registry(args.registry, args.config, args.profile)
    art = evaluate(args.ref, args.tasks, registry, name=args.name, limit=limit, num_fewshot=args.num_fewshot,
                   batch_size=args.batch_size, chat_template=not args.no_chat_template, samples=args.samples,
                   device=args.device, force=args.force)
    print(art.ref)
    print(table(art))
    return 0
