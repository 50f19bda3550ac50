"""Pieces the training recipes share: length-grouped batches, packed rows, trainer callbacks, the settings
blocks of their configs, and Llama 2's combined-reward rule."""
