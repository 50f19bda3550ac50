"""Iterative rounds (Llama 2 RLHF-V1..V5): `camelid round`."""
