"""What `camelid compare` reports beside the judges: exact match on prompts with reference answers
(camelid.eval.exact_match) and the lm-eval results (`camelid eval`) published on each compared checkpoint."""

from __future__ import annotations

from html import escape

from camelid.eval.exact_match import exact_match
from camelid.log import get_logger

log = get_logger("compare")


def benchmarks(registry, checkpoints: list) -> dict:
    """{checkpoints: {ref: {task: {metric: value}}}, sources: {ref: [eval refs]}}: for each checkpoint, the newest
    result per task among the eval artifacts whose input is that checkpoint (by content hash)."""
    from camelid.hf.card import reports_on

    per, sources = {}, {}
    for art in checkpoints:
        if art.external:
            continue
        tasks: dict = {}
        evals = reports_on(registry, art, "eval")
        for ev in evals:  # oldest first: a newer run of a task replaces an older one
            tasks.update(ev.manifest.get("metrics", {}).get("tasks") or {})
        if tasks:
            per[art.ref] = tasks
            sources[art.ref] = [ev.ref for ev in evals]
    return {"checkpoints": per, "sources": sources} if per else {}


def add_extras(numbers: dict, prompts, results: list, registry, inputs: dict) -> None:
    """Add exact match to each checkpoint's row and the lm-eval results to ``numbers`` (report.json); log them."""
    for row, r in zip(numbers["checkpoints"], results):
        em = exact_match(prompts.records, r.responses)
        if em is not None:
            row["exact_match"], row["exact_match_n"] = em["exact_match"], em["n"]
            log.info("%s: exact match %.3f on %d prompts with reference answers", r.ref, em["exact_match"], em["n"])
    roles = sorted((k for k in inputs if k.startswith("checkpoint")), key=lambda k: int(k[10:]))
    bench = benchmarks(registry, [inputs[k] for k in roles])
    if bench:
        numbers["benchmarks"] = bench
        for ref, tasks in bench["checkpoints"].items():
            log.info("%s: lm-eval %s", ref, "; ".join(f"{t} " + ", ".join(f"{m} {v:.3f}" for m, v in s.items())
                                                   for t, s in sorted(tasks.items())))


def extras_html(numbers: dict) -> str:
    """The report's exact-match and lm-eval tables (empty when there is neither)."""
    out = []
    rows = [c for c in numbers["checkpoints"] if c.get("exact_match") is not None]
    if rows:
        body = "".join(f'<tr><td class="l">{escape(c["ref"])}</td><td>{100 * c["exact_match"]:.1f}%</td>'
                       f'<td>{c["exact_match_n"]}</td></tr>' for c in rows)
        out.append('<h2>Exact match</h2><p class="meta">Prompts with a reference answer: the final number '
                   "(GSM8K's #### convention, else the last number), the picked letter (multiple choice), or the "
                   "accepted answer in the first words (camelid.eval.exact_match).</p>"
                   f'<table><tr><th class="l">checkpoint</th><th>exact match</th><th>n</th></tr>{body}</table>')
    bench = (numbers.get("benchmarks") or {}).get("checkpoints") or {}
    if bench:
        refs = list(bench)
        keys = sorted({(t, m) for tasks in bench.values() for t, s in tasks.items() for m in s})
        head = "".join(f"<th>{escape(r)}</th>" for r in refs)

        def cell(ref, task, metric):
            v = bench[ref].get(task, {}).get(metric)
            return f"<td>{'–' if v is None else f'{v:.3f}'}</td>"
        body = "".join(f'<tr><td class="l">{escape(t)}</td><td class="l">{escape(m)}</td>'
                       + "".join(cell(r, t, m) for r in refs) + "</tr>" for t, m in keys)
        src = "; ".join(f"{escape(r)}: {', '.join(escape(s) for s in v)}"
                        for r, v in numbers["benchmarks"]["sources"].items())
        out.append('<h2>Benchmarks (lm-eval)</h2><p class="meta">From the eval artifacts published on each '
                   f"checkpoint with <code>camelid eval</code> ({src}).</p>"
                   f'<table><tr><th class="l">task</th><th class="l">metric</th>{head}</tr>{body}</table>')
    return "".join(out)


def headline_lines(art) -> list[str]:
    """Terminal lines after compare's headline table: exact match and lm-eval results, when present."""
    metrics = art.manifest.get("metrics", {})
    lines = [f"exact match  {ref}: {row['exact_match']:.3f}" for ref, row in metrics.get("checkpoints", {}).items()
             if row.get("exact_match") is not None]
    for ref, tasks in (metrics.get("benchmarks") or {}).get("checkpoints", {}).items():
        lines.append(f"lm-eval  {ref}: " + "; ".join(f"{t} " + ", ".join(f"{m} {v:.3f}" for m, v in s.items())
                                                      for t, s in sorted(tasks.items())))
    return lines
