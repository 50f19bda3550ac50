#!/usr/bin/env bash
# GPU throughput of camelid SFT on a ~0.8B Llama (issue #10), as run on the lent H100: one GPU, bf16.
#
#   bash bench/gpu.sh            # appends sections to bench/RESULTS.md
#
# The model is the toy world's tokenizer (1,024 tokens) on a Llama of width 2048, MLP 5632, 16 layers and
# 16 heads: 0.83B parameters, randomly initialised by `camelid init` (throughput does not depend on the
# weights). Variants, alternating: camelid sft as configured by default (length-grouped batches, sdpa,
# lengths padded to a multiple of 64), a plain TRL SFTTrainer script, and camelid with padding-free packing
# under flex_attention. (Packing under sdpa is left out: the flattened 128x256 batch's full mask ran out of
# the H100's 80 GB.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
BIG=(--set toy_base.hidden_size=2048 --set toy_base.intermediate_size=5632 --set toy_base.num_layers=16
     --set toy_base.num_heads=16 --set toy_base.max_position_embeddings=4096 --set toy_base.eval_prompts=0)
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true
$PY bench/sft.py --steps ${STEPS:-30} --repeats ${REPEATS:-2} --no-grouped "${BIG[@]}" \
    --set stages.sft.batch_size=${BATCH:-128} --title "0.83B Llama, 1 GPU" \
    --camelid-variant "packed, flex:stages.sft.packing=true,attn_implementation=flex_attention"
