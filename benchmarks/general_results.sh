#!/bin/bash
# The README's results of the shipped general models, in order (run from the repository root):
#   bash benchmarks/general_results.sh   (needs runs/corpora/general-v3-es-en: carousel prepare mix --spec data/mixes/general-v3-es-en.yaml)
set -u
N=../shared/corpora/wmt-news/newstest2012
mkdir -p runs/eval
for d in es-en en-es; do
  s=${d%-*}; t=${d#*-}
  echo "== FLORES devtest $d (model, --update-card)"
  carousel evaluate --model models/general-$d --split test --update-card --quiet
  echo "== FLORES devtest $d routed"
  carousel evaluate --pair $d --domain auto --corpus runs/corpora/general-v3-es-en --split test --src $s --ref $t --quiet
  echo "== newstest2012 $d"
  carousel translate --model models/general-$d --quiet < $N.$s > runs/eval/newstest2012.$d.hyp
  carousel evaluate --hyp runs/eval/newstest2012.$d.hyp --refs $N.$t --quiet
  echo "== Debian test $d"
  carousel evaluate --model models/general-$d --corpus data/corpora/debian --split test --src $s --ref $t --quiet
  echo "== Bible test $d routed"
  carousel evaluate --pair $d --domain auto --corpus data/corpora/bible --split test --src $s --ref $t --quiet
done
echo "== everyday"
python benchmarks/everyday.py
