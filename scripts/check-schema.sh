#!/usr/bin/env bash
# The drift check (`just check-schema`, run by CI): applies migrations/ to a scratch
# database and fails, printing the diff, when crates/aura-schema/src/schema.rs is not
# what `diesel print-schema` makes of them. See scripts/schema.sh for how and its
# environment variables (AURA_SCHEMA_ROOT, AURA_CLI).
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/schema.sh" --check "$@"
