#!/bin/bash
# Decoding speed of the shipped general models at their default decoding, natively and held to AVX2 as on
# an EPYC without AVX-512 (run from the repository root): bash benchmarks/general_speed.sh
set -u
AVX2="ATEN_CPU_CAPABILITY=avx2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2"
F=../shared/evalsets/flores101/devtest
for isa in native avx2; do
  envs=""; [ $isa = avx2 ] && envs=$AVX2
  echo "== decode.py es-en $isa"; env $envs python benchmarks/decode.py --model models/general-es-en --files $F.es $F.en --beams 3,5,3 --modes int8 2>&1 | tail -n 3
  echo "== decode.py en-es $isa"; env $envs python benchmarks/decode.py --model models/general-en-es --files $F.en $F.es --beams 5 --modes int8 2>&1 | tail -n 1
done
for round in 1 2 3; do
  for isa in native avx2; do
    envs=""; [ $isa = avx2 ] && envs=$AVX2
    for d in es-en en-es; do
      s=${d%-*}
      start=$(date +%s.%N); env $envs carousel translate --model models/general-$d --quiet < $F.$s > /dev/null; end=$(date +%s.%N)
      python -c "print('whole process $d $isa: %.1f lines/s (%.2f s)' % (1012 / ($end - $start), $end - $start))"
    done
    start=$(date +%s.%N); env $envs carousel translate --model models/general-es-en --beam 5 --quiet < $F.es > /dev/null; end=$(date +%s.%N)
    python -c "print('whole process es-en beam 5 $isa: %.1f lines/s (%.2f s)' % (1012 / ($end - $start), $end - $start))"
  done
done
