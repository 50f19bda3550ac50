"""How much camelid's generated real-wording prompts overlap a public prompt set (e.g. XSTest): the check that
nothing was copied and that the held-out numbers are not measured on training text.

Two measures per reference prompt, on normalised words (lower case, punctuation dropped):
- the longest run of words it shares with any generated prompt (``longest_shared``);
- its highest word-set Jaccard similarity to any generated prompt (``nearest``).
Short everyday questions share short runs by chance ("how do i kill a"); a copied or lightly edited prompt
shares nearly all of its words. ``report`` gives the distribution and the worst cases.

    python -m camelid.data.realworld.overlap PATH [--format xstest]
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _ngrams(ws: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}


def longest_shared(reference: list[str], generated_ngrams: dict[int, set]) -> int:
    """The longest run of ``reference``'s words that also occurs in some generated prompt."""
    best = 0
    for n in sorted(generated_ngrams):
        if _ngrams(reference, n) & generated_ngrams[n]:
            best = n
        else:
            break
    return best


def report(generated: Iterable[str], reference: Iterable[str], max_n: int = 12) -> dict:
    """Overlap of every reference prompt with the generated ones: counts by longest shared run, Jaccard, worst."""
    gen = [words(t) for t in generated]
    gen_sets = [set(w) for w in gen if w]
    grams = {n: set().union(*(_ngrams(w, n) for w in gen)) for n in range(1, max_n + 1)}
    rows = []
    for text in reference:
        ws = words(text)
        if not ws:
            continue
        s = set(ws)
        jac = max((len(s & g) / len(s | g) for g in gen_sets), default=0.0)
        run = longest_shared(ws, grams)
        rows.append({"prompt": text, "words": len(ws), "longest_shared": run, "shared_share": run / len(ws),
                     "nearest_jaccard": round(jac, 3)})
    rows.sort(key=lambda r: (-r["shared_share"], -r["nearest_jaccard"]))
    n = len(rows)
    return {"reference_prompts": n, "generated_prompts": len(gen),
            "longest_shared_max": max((r["longest_shared"] for r in rows), default=0),
            "share_with_run_of_6_or_more": sum(r["longest_shared"] >= 6 for r in rows) / n if n else 0.0,
            "share_with_jaccard_0.6_or_more": sum(r["nearest_jaccard"] >= 0.6 for r in rows) / n if n else 0.0,
            "worst": rows[:10]}


def generated_prompts() -> list[str]:
    """Every prompt text the generator can produce, both splits (all phrasings of every part)."""
    from camelid.data.realworld import parts
    from camelid.data.realworld.generator import pools
    from camelid.data.realworld.knowledge import QUESTIONS

    out = []
    for split in ("train", "eval"):
        pool = pools(split)
        out += [h.request for h in pool["harmful"] + pool["blunt"]]
        out += [q for s in pool["safe"] for q in s.questions]
        out += pool["ordinary"]
        out += sorted({w.request for w in pool["wordplay"] + pool["wordplay_unsafe"]})
    out += [q for q, _ in QUESTIONS] + list(parts.FACT_QUESTIONS)
    return out


def main(argv: list[str] | None = None) -> int:
    import json

    from camelid.data.load import load_records
    from camelid.data.spec import DataSpec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="a prompt set in any format camelid reads (e.g. XSTest's CSV or JSONL)")
    ap.add_argument("--format", default="auto")
    args = ap.parse_args(argv)
    ref = [p.messages[-1]["content"] for p in load_records(DataSpec(format=args.format, path=args.path),
                                                           "prompts").records]
    print(json.dumps(report(generated_prompts(), ref), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
