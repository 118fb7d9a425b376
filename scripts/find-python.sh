#!/usr/bin/env bash
# Prints the interpreter to build the virtualenvs with: python3.12 (the Lambda runtime) when the
# machine has it, directly or through pyenv, else python3.
set -euo pipefail
if command -v python3.12 >/dev/null 2>&1 && python3.12 -c 'import sys' >/dev/null 2>&1; then
  echo python3.12; exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$)' | sort -V -r); do
    candidate="$(pyenv root)/versions/${version}/bin/python3.12"
    if [ -x "$candidate" ]; then echo "$candidate"; exit 0; fi
  done
fi
echo python3
