"""Rejection sampling (Llama 2's RLHF-V1..V4): best-of-K answers by the combined reward, then fine-tuning on them."""
