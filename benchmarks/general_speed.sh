#!/bin/bash
# Decoding speed of the shipped general models at their default decoding, natively and held to AVX2 as on
# an EPYC without AVX-512 (run from the repository root): bash benchmarks/general_speed.sh
set -u
AVX2="ATEN_CPU_CAPABILITY=avx2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2"
F=../shared/evalsets/flores101/devtest

# whole LABEL ENVS DIRECTION [FLAGS...]: one `carousel translate` process over FLORES devtest, model loading included
whole() {
  local label=$1 envs=$2 d=$3; shift 3
  local start end
  start=$(date +%s.%N); env $envs carousel translate --model models/general-$d "$@" --quiet < $F.${d%-*} > /dev/null; end=$(date +%s.%N)
  python -c "print('whole process $label: %.1f lines/s (%.2f s)' % (1012 / ($end - $start), $end - $start))"
}

for isa in native avx2; do
  envs=""; [ $isa = avx2 ] && envs=$AVX2
  echo "== decode.py es-en $isa"; env $envs python benchmarks/decode.py --model models/general-es-en --files $F.es $F.en --beams 3,5,3 --modes int8 2>&1 | tail -n 3
  echo "== decode.py en-es $isa"; env $envs python benchmarks/decode.py --model models/general-en-es --files $F.en $F.es --beams 5 --modes int8 2>&1 | tail -n 1
  echo "== decode.py --parallel 2 (as carousel translate: slices on two threads) es-en, en-es $isa"
  env $envs python benchmarks/decode.py --model models/general-es-en --files $F.es $F.en --beams 3 --modes int8 --parallel 2 2>&1 | tail -n 1
  env $envs python benchmarks/decode.py --model models/general-en-es --files $F.en $F.es --beams 5 --modes int8 --parallel 2 2>&1 | tail -n 1
done
for round in 1 2 3; do
  for isa in native avx2; do
    envs=""; [ $isa = avx2 ] && envs=$AVX2
    whole "es-en $isa" "$envs" es-en
    whole "en-es $isa" "$envs" en-es
    whole "es-en beam 5 $isa" "$envs" es-en --beam 5
    whole "es-en one thread $isa" "$envs" es-en --threads 1
    whole "en-es one thread $isa" "$envs" en-es --threads 1
  done
done
