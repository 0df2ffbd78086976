#!/usr/bin/env bash
# libgraft.so exports only its public API: every defined dynamic symbol starts with gf_ and is
# declared in a public header (include/graft/*.h).
#   test_exports.sh LIBGRAFT.so SOURCE_DIR
set -u
lib="$1" src="$2"
command -v nm >/dev/null || { echo "test_exports: nm not found"; exit 77; }
pass=0 fail=0
syms="$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sed 's/@.*//' | sort -u)"
count="$(printf '%s\n' "$syms" | grep -c .)"
if [ "$count" -lt 100 ]; then
  echo "FAIL: only $count defined dynamic symbols in $lib"; fail=$((fail + 1))
else pass=$((pass + 1)); fi
bad="$(printf '%s\n' "$syms" | grep -v '^gf_' || true)"
if [ -n "$bad" ]; then
  echo "FAIL: symbols without the gf_ prefix:"; printf '  %s\n' $bad; fail=$((fail + 1))
else pass=$((pass + 1)); fi
undeclared=""
for s in $(printf '%s\n' "$syms" | grep '^gf_'); do
  grep -qw "$s" "$src"/include/graft/*.h || undeclared="$undeclared $s"
done
if [ -n "$undeclared" ]; then
  echo "FAIL: exported but not declared in include/graft/:"; printf '  %s\n' $undeclared
  fail=$((fail + 1))
else pass=$((pass + 1)); fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
