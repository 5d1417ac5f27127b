#!/usr/bin/env bash
# Lints the migrations a change adds (`aura db lint <folders>`), for CI: the folders under
# migrations/ whose up.sql was added since the merge base of HEAD with the base branch.
# Migrations already on the base branch are history and are not linted again.
#
# The base branch: $AURA_LINT_BASE (a ref or commit) when set, else origin/main, else main.
# When none of them exists or git finds no merge base (a shallow clone, a fresh clone
# without the base branch fetched, unrelated histories), it says so on stderr and lints
# every migration folder instead: the project's own migrations pass the lint (a test
# checks it), so the fallback costs a second, never a false failure.
#
# Output: GitHub workflow commands (annotations on the pull request's diff) when
# GITHUB_ACTIONS=true, else text; $AURA_LINT_FORMAT (text|github|markdown) overrides. When
# $GITHUB_STEP_SUMMARY names a file, the findings are appended to it as a Markdown table too.
# $AURA_BIN is the aura command (default: cargo run -q -p aura-cli --).
# Exit code: aura db lint's (0 no error finding, 1 an error finding or bad input).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

read -r -a aura <<<"${AURA_BIN:-cargo run -q -p aura-cli --}"
if [ -n "${AURA_LINT_FORMAT:-}" ]; then
    format="$AURA_LINT_FORMAT"
elif [ "${GITHUB_ACTIONS:-}" = true ]; then
    format=github
else
    format=text
fi

base="" base_ref=""
for ref in ${AURA_LINT_BASE:-} origin/main main; do
    if ! git rev-parse -q --verify "$ref^{commit}" >/dev/null; then
        [ "$ref" = "${AURA_LINT_BASE:-}" ] && echo "lint-added-migrations: $ref: no such commit" >&2
        continue
    fi
    if base="$(git merge-base HEAD "$ref" 2>/dev/null)"; then
        base_ref="$ref"
        break
    fi
    echo "lint-added-migrations: HEAD and $ref have no merge base" >&2
done

# `aura db lint` on the folders given, plus the step summary's table when asked for.
lint() {
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
        "${aura[@]}" db lint --format markdown "$@" >>"$GITHUB_STEP_SUMMARY" || true
    fi
    exec "${aura[@]}" db lint --format "$format" "$@"
}

if [ -z "$base_ref" ]; then
    echo "lint-added-migrations: no base to compare with (set AURA_LINT_BASE, or fetch main); linting every migration" >&2
    lint migrations
fi

dirs=()
while IFS= read -r up; do
    dir="${up%/up.sql}"
    [ -d "$dir" ] && dirs+=("$dir")
done < <(git diff --name-only --diff-filter=A "$base" HEAD -- 'migrations/*/up.sql')

if [ "${#dirs[@]}" -eq 0 ]; then
    echo "lint-added-migrations: no migration added since $base_ref (merge base ${base:0:12})"
    exit 0
fi
echo "lint-added-migrations: ${#dirs[@]} migration(s) added since $base_ref (merge base ${base:0:12})"
lint "${dirs[@]}"
