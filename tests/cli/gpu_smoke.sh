#!/usr/bin/env bash
# Runs a GPU example briefly: without a usable GPU it must stop with dsd's clear "no usable CUDA
# device" error, and the test is reported as skipped (exit 77); with one it must train to a sane
# accuracy. Usage: gpu_smoke.sh BINARY ARGS...
out=$("$@" 2>&1); rc=$?
echo "$out"
if [ $rc -ne 0 ] && grep -q "no usable CUDA device" <<<"$out"; then exit 77; fi
[ $rc -eq 0 ] || { echo "exit status $rc"; exit 1; }
grep -Eq "final test accuracy: 0\.(7[5-9]|8|9)" <<<"$out" || { echo "accuracy too low"; exit 1; }
