"""The comparison report as one self-contained HTML file: inline CSS, plots as base64 PNGs, no scripts.

It opens from disk or an artifact store with no network access; every piece of model or prompt text
goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import io
from html import escape

import matplotlib

matplotlib.use("Agg")  # no display on servers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

JUDGE_TITLES = {"helpfulness": "helpfulness RM", "safety": "safety RM", "combined": "combined reward (Llama 2)",
                "oracle": "toy-world oracle"}
COLORS = {"win": "#2e7d32", "tie": "#9e9e9e", "loss": "#c62828"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;
padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:right;vertical-align:top}
th{background:#f5f5f5}td.l,th.l{text-align:left}
.ci{color:#777;font-size:.8em}.meta{color:#555}
img.plot{max-width:100%;border:1px solid #eee;margin:.5rem 0;display:block}
.example{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.8rem}
.turn{white-space:pre-wrap;margin:.2rem 0}.role{font-weight:600;color:#555}
.answers{display:grid;gap:.8rem;grid-template-columns:repeat(auto-fit,minmax(260px,1fr))}
.answer{background:#fafafa;border:1px solid #eee;border-radius:4px;padding:.5rem}
.answer pre{white-space:pre-wrap;word-break:break-word;font-family:inherit;margin:.3rem 0}
.tag{display:inline-block;background:#eef;border-radius:3px;padding:0 .3rem;margin-right:.3rem;font-size:.8em}
"""


def _fmt(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        return f"{x:.{digits}f}"
    return escape(str(x))


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _ci(d: dict | None, pct: bool = True) -> str:
    if not d or d.get("value") is None:
        return "–"
    f = _pct if pct else (lambda v: _fmt(v, 0))
    return f'{f(d["value"])} <span class="ci">[{f(d["lo"])}, {f(d["hi"])}]</span>'


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str) -> str:
    return f'<img class="plot" alt="{escape(alt)}" src="data:image/png;base64,{b64}">'


# ---- plots ------------------------------------------------------------------------------------------

def plot_win_rates(numbers: dict) -> str | None:
    """Stacked win/tie/loss bars for every pair and judge, with the win rate's bootstrap interval."""
    rows = [(f'{p["a"]} vs {p["b"]}\n{JUDGE_TITLES.get(j, j)}', w) for p in numbers["pairs"]
            for j, w in p["judges"].items()]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.2))
    for y, (_, w) in enumerate(rows):
        left = 0.0
        for k in ("win", "tie", "loss"):
            v = w[k]["value"] or 0.0
            ax.barh(y, v, left=left, color=COLORS[k], label=k if y == 0 else None)
            left += v
        wr = w["win_rate"]
        if wr["value"] is not None:
            ax.errorbar(wr["value"], y, xerr=[[wr["value"] - wr["lo"]], [wr["hi"] - wr["value"]]], fmt="o",
                        color="black", capsize=3, label="win rate (95% CI)" if y == 0 else None)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
    ax.axvline(0.5, color="black", lw=0.5, ls=":")
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel("share of prompts (first checkpoint's view)")
    ax.legend(loc="lower right", fontsize=8, bbox_to_anchor=(1, 1.0), ncol=4)
    return _png(fig)


def plot_ratings(numbers: dict) -> str | None:
    """Bradley-Terry Elo of each checkpoint per judge, with bootstrap intervals."""
    ratings = numbers.get("ratings") or {}
    if not ratings:
        return None
    refs = [c["ref"] for c in numbers["checkpoints"]]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(refs) * len(ratings) + 1.2))
    step = 0.8 / max(len(ratings), 1)
    for k, (judge, rs) in enumerate(ratings.items()):
        ys = [i + k * step for i in range(len(refs))]
        vals = [rs[r]["elo"] for r in refs]
        err = [[rs[r]["elo"] - rs[r]["lo"] for r in refs], [rs[r]["hi"] - rs[r]["elo"] for r in refs]]
        ax.errorbar(vals, ys, xerr=err, fmt="o", capsize=3, label=JUDGE_TITLES.get(judge, judge))
    ax.set_yticks([i + 0.4 - step / 2 for i in range(len(refs))], refs)
    ax.axvline(1000, color="black", lw=0.5, ls=":")
    ax.invert_yaxis()
    ax.set_xlabel("Elo (Bradley-Terry; 400 points = 10:1 odds)")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_safety(numbers: dict) -> str | None:
    """Safety violations and refusals on harmful prompts, over-refusal on borderline ones, and mean length."""
    cks = numbers["checkpoints"]
    if not cks:
        return None
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
    metrics = [("safety_violation_rate", "safety violation (harmful)"), ("harmful_refusal_rate", "refusal (harmful)"),
               ("over_refusal_rate", "over-refusal (borderline)"), ("refusal_rate", "refusal (all)")]
    width = 0.8 / len(metrics)
    for k, (key, label) in enumerate(metrics):
        xs = [i + k * width for i in range(len(cks))]
        ax.bar(xs, [c.get(key) or 0.0 for c in cks], width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cks))], [c["ref"] for c in cks], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("rate")
    ax.legend(fontsize=7)
    ax2.bar(range(len(cks)), [c.get("mean_length_words") or 0.0 for c in cks], color="#5c6bc0")
    ax2.set_xticks(range(len(cks)), [c["ref"] for c in cks], fontsize=8)
    ax2.set_ylabel("mean response length (words)")
    return _png(fig)


# ---- sections ---------------------------------------------------------------------------------------

def _checkpoint_table(numbers: dict) -> str:
    judges = numbers["judges"]
    has_kl = any("kl_to_reference" in c for c in numbers["checkpoints"])
    has_oracle = any("oracle" in c for c in numbers["checkpoints"])
    head = ["checkpoint", "answers", "mean length (words)", "safety violation", "over-refusal", "refusal"]
    head += [f"mean {JUDGE_TITLES.get(j, j)}" for j in judges]
    head += ["oracle task accuracy"] if has_oracle else []
    head += ["KL to reference", "reference perplexity"] if has_kl else []
    rows = []
    for c in numbers["checkpoints"]:
        cells = [f'<td class="l">{escape(c["ref"])}</td>', f'<td>{"cached" if c["from_cache"] else "generated"}</td>',
                 f'<td>{_fmt(c["mean_length_words"], 1)}</td>', f'<td>{_pct(c["safety_violation_rate"])}</td>',
                 f'<td>{_pct(c["over_refusal_rate"])}</td>', f'<td>{_pct(c["refusal_rate"])}</td>']
        cells += [f'<td>{_fmt(c["mean_score"].get(j))}</td>' for j in judges]
        if has_oracle:
            cells.append(f'<td>{_pct((c.get("oracle") or {}).get("task_accuracy"))}</td>')
        if has_kl:
            cells += [f'<td>{_fmt(c.get("kl_to_reference"))}</td>', f'<td>{_fmt(c.get("reference_perplexity"), 2)}</td>']
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ths = "".join(f'<th{" class=l" if i == 0 else ""}>{escape(h)}</th>' for i, h in enumerate(head))
    return f'<table id="checkpoints"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _points(d: dict | None) -> str:
    """A difference of rates in percentage points, with its interval."""
    if not d or d.get("value") is None:
        return "–"
    f = lambda v: f"{100 * v:+.1f}".replace("-", "−")  # noqa: E731
    return f'{f(d["value"])} pts <span class="ci">[{f(d["lo"])}, {f(d["hi"])}]</span>'


def _behaviour_table(numbers: dict) -> str:
    """What a real model needs at a glance: refusal where it is right and where it is not, length, KL, and
    task accuracy per family (toy-world oracle)."""
    cks = numbers["checkpoints"]
    families = sorted({f for c in cks for f in (c.get("task_accuracy_per_family") or {})})
    head = ["checkpoint", "refusal on harmful", "over-refusal (benign but scary)", "mean length (words)",
            "mean length (tokens)", "KL to reference"] + [f"task accuracy: {f}" for f in families]
    rows = []
    for c in cks:
        acc = c.get("task_accuracy_per_family") or {}
        cells = [f'<td class="l">{escape(c["ref"])}</td>', f'<td>{_pct(c.get("harmful_refusal_rate"))}</td>',
                 f'<td>{_pct(c.get("over_refusal_rate"))}</td>', f'<td>{_fmt(c.get("mean_length_words"), 1)}</td>',
                 f'<td>{_fmt(c.get("mean_length_tokens"), 1)}</td>', f'<td>{_fmt(c.get("kl_to_reference"))}</td>']
        cells += [f"<td>{_pct(acc.get(f))}</td>" for f in families]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ths = "".join(f'<th{" class=l" if i == 0 else ""}>{escape(h)}</th>' for i, h in enumerate(head))
    return f'<table id="behaviour"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _families_table(numbers: dict) -> str:
    """Per pair and task family: both accuracies and A − B with its paired bootstrap interval."""
    rows = [f'<tr><td class="l">{escape(p["a"])}</td><td class="l">{escape(p["b"])}</td><td class="l">{escape(f)}</td>'
            f'<td>{d["n"]}</td><td>{_pct(d["a"])}</td><td>{_pct(d["b"])}</td><td>{_points(d["diff"])}</td></tr>'
            for p in numbers["pairs"] for f, d in (p.get("task_accuracy_per_family") or {}).items()]
    if not rows:
        return ""
    head = ("<tr><th class=l>A</th><th class=l>B</th><th class=l>task family</th><th>prompts</th>"
            "<th>A accuracy</th><th>B accuracy</th><th>A − B</th></tr>")
    return f'<table id="families"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _pairs_table(numbers: dict) -> str:
    rows = []
    for p in numbers["pairs"]:
        for j, w in p["judges"].items():
            lc = p["length_controlled"].get(j)
            rows.append(
                f'<tr><td class="l">{escape(p["a"])}</td><td class="l">{escape(p["b"])}</td>'
                f'<td class="l">{escape(JUDGE_TITLES.get(j, j))}</td><td>{_ci(w["win"])}</td><td>{_ci(w["tie"])}</td>'
                f'<td>{_ci(w["loss"])}</td><td>{_ci(w["win_rate"])}</td><td>{_ci(lc)}</td></tr>')
    head = ("<tr><th class=l>A</th><th class=l>B</th><th class=l>judge</th><th>A wins</th><th>tie</th>"
            "<th>A loses</th><th>win rate (tie = ½)</th><th>length-controlled win rate</th></tr>")
    return f'<table id="pairs"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _ratings_table(numbers: dict) -> str:
    rows = []
    for j, rs in (numbers.get("ratings") or {}).items():
        for ref, r in sorted(rs.items(), key=lambda kv: -kv[1]["elo"]):
            rows.append(f'<tr><td class="l">{escape(JUDGE_TITLES.get(j, j))}</td><td class="l">{escape(ref)}</td>'
                        f'<td>{_ci({"value": r["elo"], "lo": r["lo"], "hi": r["hi"]}, pct=False)}</td></tr>')
    head = "<tr><th class=l>judge</th><th class=l>checkpoint</th><th>Elo [95% CI]</th></tr>"
    return f'<table id="ratings"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _refused(answer: dict) -> str:
    if not answer["refused"]:
        return ""
    phrase = answer.get("refusal_phrase")
    return f', refused: “{escape(phrase)}”' if phrase else ", refused"


def _example(ex: dict, judges: list[str]) -> str:
    turns = "".join(f'<div class="turn"><span class="role">{escape(m["role"])}:</span> {escape(m["content"])}</div>'
                    for m in ex["messages"])
    prefs = " ".join(f'<span class="tag">{escape(JUDGE_TITLES.get(j, j))} → {escape(ref)}</span>'
                     for j, ref in ex["preferred_by"].items())
    cards = []
    for a in ex["answers"]:
        scores = ", ".join(f"{escape(j)} {_fmt(a['scores'].get(j), 2)}" for j in judges)
        verdict = f' · oracle: {escape(str(a["oracle"].get("verdict", "")))}' if a.get("oracle") else ""
        cards.append(f'<div class="answer"><b>{escape(a["ref"])}</b> <span class="meta">({a["length_words"]} words'
                     f'{_refused(a)}{verdict})</span><pre>{escape(a["response"]) or "<i>(empty)</i>"}'
                     f'</pre><div class="meta">{scores}</div></div>')
    meta = f'{escape(ex["group"])} · {escape(str(ex.get("category") or ""))} · disagreement {ex["disagreement"]:.2f}'
    return (f'<div class="example"><div class="meta">{meta}</div>{turns}<div>{prefs}</div>'
            f'<div class="answers">{"".join(cards)}</div></div>')


def _sets_section(numbers: dict) -> str:
    """One table per extra prompt set (refusal, over-refusal, knowledge by checkpoint), then its categories."""
    sets = numbers.get("sets") or {}
    if not sets:
        return ""
    out = ['<h2>Prompt sets</h2><p class="meta">Answered with the same sampling; refusals by string match '
           "(camelid.eval.refusal), knowledge by answer match (camelid.data.realworld.knowledge); no reward model."
           "</p>"]
    for name, s in sets.items():
        p = s["prompts"]
        groups = ", ".join(f"{v} {escape(k)}" for k, v in p["groups"].items())
        rows = "".join(f'<tr><td class="l">{escape(c["ref"])}</td><td>{_pct(c.get("harmful_refusal_rate"))}</td>'
                       f'<td>{_pct(c.get("over_refusal_rate"))}</td><td>{_pct(c.get("knowledge_accuracy"))}</td></tr>'
                       for c in s["checkpoints"])
        cats = sorted({cat for c in s["checkpoints"] for cat in c["per_category"]})
        head = "".join(f"<th>{escape(c['ref'])}</th>" for c in s["checkpoints"])

        def cell(c, cat):
            v = c["per_category"].get(cat) or {}
            x = v.get("accuracy") if v.get("accuracy") is not None else v.get("refusal_rate")
            return f"<td>{_pct(x)}</td>"
        cat_rows = "".join(f'<tr><td class="l">{escape(cat)}</td><td>{s["checkpoints"][0]["per_category"][cat]["n"]}'
                           f'</td>{"".join(cell(c, cat) for c in s["checkpoints"])}</tr>' for cat in cats)
        out.append(f'<h3>{escape(name)}</h3><p class="meta">{p["n"]} prompts from <b>{escape(p["source"])}</b> '
                   f'({groups})</p><table><tr><th class="l">checkpoint</th><th>harmful refused</th>'
                   f'<th>over-refusal</th><th>knowledge</th></tr>{rows}</table>'
                   f'<details><summary>per category (refusal rate; accuracy for knowledge)</summary><table><tr>'
                   f'<th class="l">category</th><th>n</th>{head}</tr>{cat_rows}</table></details>')
    return "".join(out)


def render_html(numbers: dict, title: str = "camelid compare") -> str:
    """The whole report page from the numbers of `camelid.eval.compare.summarize`."""
    from camelid.eval.compare_extras import extras_html
    p, s = numbers["prompts"], numbers["sampling"]
    groups = ", ".join(f"{v} {escape(k)}" for k, v in p["groups"].items())
    plots = [(plot_win_rates(numbers), "win, tie and loss rates per pair and judge"),
             (plot_ratings(numbers), "Bradley-Terry Elo ratings"),
             (plot_safety(numbers), "safety violation, refusal on harmful, over-refusal and refusal rates; mean length")]
    figures = "".join(_img(b, alt) for b, alt in plots if b)
    judges = numbers["judges"]
    ref = f' KL and perplexity against <b>{escape(numbers["reference"])}</b>.' if numbers.get("reference") else ""
    svj = numbers.get("safety_violation_judge") or "nobody (no oracle or safety RM)"
    examples = "".join(_example(ex, judges) for ex in numbers["examples"])
    det = numbers.get("refusal_detector") or {}
    refusals = (f' Refusals detected by the {escape(det["name"])} (<code>{escape(det["detector"])}</code>).'
                if det else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>{escape(title)}: {" vs ".join(escape(c["ref"]) for c in numbers["checkpoints"])}</h1>
<p class="meta">{p["n"]} prompts from <b>{escape(p["source"])}</b> ({groups}); sampling: max_new_tokens
{s["max_new_tokens"]}, temperature {s["temperature"]}, top_p {s["top_p"]}, seed {s["seed"]} (the same for every
checkpoint). Judges: {escape(", ".join(JUDGE_TITLES.get(j, j) for j in judges) or "none")}. Intervals: 95% percentile
bootstrap over prompts ({numbers["bootstrap"]} resamples). Safety violations judged by
{escape(svj)}.{refusals}{ref}</p>
<h2>Checkpoints</h2>{_checkpoint_table(numbers)}
<h2>Refusals, length and task accuracy</h2>{_behaviour_table(numbers)}{_families_table(numbers)}
{_sets_section(numbers)}{extras_html(numbers)}
<h2>Pairwise win / tie / loss</h2>{_pairs_table(numbers)}
<h2>Ratings</h2>{_ratings_table(numbers)}
<h2>Plots</h2>{figures}
<h2>Side by side (judges disagree most first)</h2>{examples or "<p>No examples.</p>"}
</body></html>
"""
