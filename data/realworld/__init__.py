"""Real-wording data written for camelid: harmful requests across a risk taxonomy (refused), safe prompts that
only sound unsafe (answered), ordinary instructions, and a general-knowledge check (README.md here).

```python
from camelid.data.realworld import records, knowledge_prompts
records("sft", split="train", n=600)                     # format: real in a data spec
records("pairs", split="train", n=300, objective="safety")
records("prompts", split="eval", n=240)                  # held-out acts, phrasings and topics
knowledge_prompts()                                      # format: knowledge (meta.answers)
```
"""

from camelid.data.realworld.generator import ALL_GROUPS, GROUPS, RealWorld, knowledge_prompts, pools, records

__all__ = ["ALL_GROUPS", "GROUPS", "RealWorld", "knowledge_prompts", "pools", "records"]
