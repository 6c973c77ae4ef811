#!/usr/bin/env bash
# tests/regress/outputs.sh FP4SIM DATA_DIR WORK_DIR
# Runs a fixed set of fp4sim commands that write files (gemm --out,
# quantize --out, model run --logits) and prints "sha256  label" per output.
# tests/regress/outputs.sha256 holds these hashes as recorded before the
# engine/tensor refactor (issue 11); the test diffs against it so any change
# of output bits in a refactor fails CI. A deliberate change of results
# re-records the file (run this script, review the diff, commit it).
set -euo pipefail
fp4sim=$1 data=$2 work=$3
mkdir -p "$work"
cd "$work"
emit() { printf '%s  %s\n' "$(sha256sum "$2" | cut -d' ' -f1)" "$1"; }

# gemm on Philox-generated NVFP4 inputs, every accumulation mode x epilogue x format
for acc in exact seq-f32 f16-blocks; do
  for epi in exact f32; do
    for fmt in f32 f16 bf16; do
      "$fp4sim" gemm --m 33 --n 40 --k 272 --seed 7 --alpha 0.37 --acc "$acc" \
        --epilogue "$epi" --out-format "$fmt" --out g.st >/dev/null
      emit "gemm acc=$acc epi=$epi out=$fmt" g.st
    done
  done
done
"$fp4sim" gemm --m 16 --n 16 --k 64 --seed 3 --acc f16-blocks --acc-round rz --round rz \
  --out-format f16 --out g.st >/dev/null
emit "gemm f16-blocks rz" g.st

# quantize --out: two 2-D tensors of the tiny fixture, every recipe, both layouts
src="$data/hf-deepseek-v3-tiny/model-00001-of-00002.safetensors"
t=model.layers.0.mlp.gate_proj.weight,model.layers.0.self_attn.o_proj.weight
for r in modelopt-v0.2x modelopt torchao torchao-2025 te vllm-fast vllm-exact flashinfer-fast \
         flashinfer-exact compressed-tensors mxfp4 mxfp8-e4m3 mxfp8-e5m2; do
  for layout in linear swizzled; do
    "$fp4sim" quantize "$src" --tensor "$t" --recipe "$r" --layout "$layout" --out q.st >/dev/null
    emit "quantize $r $layout" q.st
  done
done

# model run --logits on the tiny fixture, both paths, several policies
m="$data/hf-deepseek-v3-tiny"
for prec in f64 f32; do
  for opt in reference transformers; do
    "$fp4sim" model run "$m" --prompt-ids 1,2,3,5,8 --generate 3 --precision "$prec" \
      --options "$opt" --logits l.st >/dev/null
    emit "model $prec $opt" l.st
  done
  for pol in bf16 fp8-block modelopt-r1 nvfp4-w4a16 nvfp4-all; do
    "$fp4sim" model run "$m" --prompt-ids 1,2,3,5,8 --generate 3 --precision "$prec" \
      --policy "$pol" --logits l.st >/dev/null
    emit "model $prec policy=$pol" l.st
  done
  "$fp4sim" model run "$m" --prompt-ids 1,2,3 --generate 2 --precision "$prec" \
    --policy nvfp4-all --engine emu:sm90-hgmma-f16 --logits l.st >/dev/null
  emit "model $prec nvfp4-all emu" l.st
done
