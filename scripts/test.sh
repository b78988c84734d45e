#!/usr/bin/env bash
# Run the whole test suite. Exit code 5 (no tests collected) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
python -m pytest "$@"
code=$?
if [ "$code" = "5" ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$code"
