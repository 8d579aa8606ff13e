#!/usr/bin/env bash
# Tables the 1,500-sentence accuracy runs of issue 13 (docs/accuracy.md) from the raw rows in this
# folder: each --merge FILE:LABEL turns the file's tokclf rows into the column LABEL (plain rows stay
# "plain"). What each file ran: README.md here.
set -euo pipefail
cd "$(dirname "$0")"
R=.
exec python ../../accuracy.py --table-only --out "$R/none.json" --datasets wnut,ncbi,ud,conll --seeds 1,2,3 \
  --arms plain,tokclf,before,grouping4,grouping4+warmup0 "$@" --merge \
  "$R/accuracy_1500.json:before" "$R/accuracy_1500_ud.json:before" "$R/c0_conll_s1.json:before" "$R/c0_s2.json:before" \
  "$R/plain_conll_s1.json" "$R/plain_s2.json" "$R/plain_s3.json" \
  "$R/wnut_s1_m4_w0.json:tokclf" "$R/g4w0_wnut_s2.json:tokclf" "$R/g4w0_first_s3.json:tokclf" \
  "$R/g4w0_first_conll_ncbi.json:tokclf" "$R/g4w0_ud_first.json:tokclf" \
  "$R/g4_all.json:grouping4" \
  "$R/wnut_s1_m4_w0.json:grouping4+warmup0" "$R/g4w0_wnut_s2.json:grouping4+warmup0" \
  "$R/g4w0_ncbi_ud.json:grouping4+warmup0" "$R/g4w0_conll.json:grouping4+warmup0"
