#!/usr/bin/env bash
# The one test command for the whole repo (CI runs it via .ci/run).
#
#   ./scripts/test.sh                    full run (installs system deps first)
#   SSEKIT_SKIP_DEPS=1 ./scripts/test.sh do not run scripts/install-deps.sh
#   SSEKIT_SKIP=chromium,nginx ./scripts/test.sh
#                                        leave out the tests that drive the
#                                        named programs (chromium, nginx, redis)
#
# Tests that drive chromium, nginx or redis-server FAIL when the program is
# missing, unless SSEKIT_SKIP names it (internal/testenv holds the rule); the
# summary lists what was skipped. Empty SSEKIT_SKIP (the default): all required.
#
# For every module in go.work (except ./tools): gofmt, go vet, staticcheck,
# go test -race. Then the wasm-capable packages under GOOS=wasip1 (wazero) and
# GOOS=js (node). Last, the run must leave the git tree as it found it (a
# clean checkout stays clean: no go.work.sum or other tracked file rewritten,
# no stray untracked file; build outputs belong in .gitignore).
# Every step runs even if an earlier one failed; the last line is
# "N passed, M failed" and the exit status is non-zero if M > 0.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export GOWORK="$ROOT/go.work"

TEST_TIMEOUT=${SSEKIT_TEST_TIMEOUT:-15m}
WASM_TIMEOUT=${SSEKIT_WASM_TIMEOUT:-30m}

passed=0
failed=0
failed_steps=()

# --- opt-outs ----------------------------------------------------------------
# SSEKIT_SKIP: comma-separated programs whose tests are left out. Exported so
# that go test (internal/testenv) and scripts/install-deps.sh see it.
SKIPPABLE=(chromium nginx redis)
export SSEKIT_SKIP=${SSEKIT_SKIP:-}
skipped=()
unknown_skips=()
IFS=, read -ra _skip_names <<<"$SSEKIT_SKIP"
for name in "${_skip_names[@]}"; do
	name=${name// /}
	[ -z "$name" ] && continue
	if [[ " ${SKIPPABLE[*]} " == *" $name "* ]]; then
		skipped+=("$name")
	else
		unknown_skips+=("$name")
	fi
done

# step NAME CMD...: run CMD, record pass/fail, never abort the script.
step() {
	local name=$1
	shift
	local start=$SECONDS
	echo
	echo "==> $name"
	if "$@"; then
		passed=$((passed + 1))
		echo "<== ok   $name ($((SECONDS - start))s)"
	else
		failed=$((failed + 1))
		failed_steps+=("$name")
		echo "<== FAIL $name ($((SECONDS - start))s)"
	fi
}

# in_dir DIR CMD...: run CMD inside DIR.
in_dir() {
	local dir=$1
	shift
	(cd "$dir" && "$@")
}

# gofmt_check DIR: gofmt -l on the module's .go files (tracked, plus untracked
# ones not ignored), excluding nested modules, vendor/ and testdata/.
gofmt_check() {
	local dir=$1 files=() excludes=() d out
	while IFS= read -r d; do
		excludes+=(":(exclude)${d#./}")
	done < <(cd "$dir" && find . -mindepth 2 -name go.mod -not -path '*/.git/*' -printf '%h\n')
	if git -C "$dir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		mapfile -d '' files < <(cd "$dir" && git ls-files -z --cached --others --exclude-standard -- \
			'*.go' ':(exclude,glob)**/testdata/**' ':(exclude,glob)**/vendor/**' "${excludes[@]}")
	else
		mapfile -d '' files < <(cd "$dir" && find . -name '*.go' -not -path '*/testdata/*' -not -path '*/vendor/*' -print0)
	fi
	[ ${#files[@]} -eq 0 ] && return 0
	out=$(cd "$dir" && gofmt -l -- "${files[@]}") || return 1
	if [ -n "$out" ]; then
		local prefix=${dir#"$ROOT"}
		prefix=${prefix#/}${prefix:+/}
		echo "gofmt: these files need formatting (run gofmt -w):"
		sed "s|^|  $prefix|" <<<"$out"
		return 1
	fi
}

# A tree fingerprint before anything runs: the "clean tree" step at the end
# compares against it.
tree_state() {
	git -C "$ROOT" status --porcelain=v1 --untracked-files=all
	# contents of what is already changed, so a further change shows too
	git -C "$ROOT" status --porcelain=v1 -z --untracked-files=all |
		tr '\0' '\n' | sed -n 's/^...//p' |
		while IFS= read -r f; do
			if [ -f "$ROOT/$f" ]; then sha1sum "$ROOT/$f"; fi
		done
}
in_git=0
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	in_git=1
	tree_before=$(tree_state)
fi

if [ ${#unknown_skips[@]} -gt 0 ]; then
	echo "SSEKIT_SKIP names unknown programs: ${unknown_skips[*]} (known: ${SKIPPABLE[*]})" >&2
	failed=$((failed + 1))
	failed_steps+=("SSEKIT_SKIP=$SSEKIT_SKIP")
fi
if [ ${#skipped[@]} -gt 0 ]; then
	echo "SSEKIT_SKIP=$SSEKIT_SKIP: the tests that drive ${skipped[*]} are skipped"
else
	echo "SSEKIT_SKIP is empty: chromium, nginx and redis-server are required"
fi

# --- system dependencies ---------------------------------------------------
if [ "${SSEKIT_SKIP_DEPS:-}" = 1 ]; then
	echo "skipping scripts/install-deps.sh (SSEKIT_SKIP_DEPS=1)"
else
	step "install-deps" ./scripts/install-deps.sh
fi

go version

# --- tools -------------------------------------------------------------------
# Pinned in tools/go.mod and built into ./bin (ignored by git) exactly as
# pinned: GOWORK=off, so the workspace's newer golang.org/x/... do not leak in.
build_tool() { # build_tool NAME PACKAGE
	mkdir -p "$ROOT/bin"
	(cd "$ROOT/tools" && GOWORK=off go build -buildvcs=false -o "$ROOT/bin/$1" "$2")
}
build_staticcheck() {
	build_tool staticcheck honnef.co/go/tools/cmd/staticcheck && "$ROOT/bin/staticcheck" -version
}
step "build staticcheck" build_staticcheck

# --- per-module checks -----------------------------------------------------
# Modules come from go.work ("go list -m" lists every workspace module).
mapfile -t modules < <(go list -m -f '{{.Dir}}')
if [ ${#modules[@]} -eq 0 ]; then
	echo "no modules found in $GOWORK" >&2
	failed=$((failed + 1))
	failed_steps+=("list modules")
fi
for dir in "${modules[@]}"; do
	[ "$dir" = "$ROOT/tools" ] && continue # build tools only, not a product module
	rel=${dir#"$ROOT"/}
	[ "$dir" = "$ROOT" ] && rel=.
	step "gofmt $rel" gofmt_check "$dir"
	step "vet $rel" in_dir "$dir" go vet ./...
	step "staticcheck $rel" in_dir "$dir" "$ROOT/bin/staticcheck" ./...
	step "test $rel" in_dir "$dir" go test -race -count=1 -timeout "$TEST_TIMEOUT" ./...
done

# --- WebAssembly -----------------------------------------------------------
# Every package of the root module must also work in wasm: its tests run
# under wasip1 (wazero) and js (node). Nested modules are not in "./...".
WASM_PKGS=(./...)

# go test finds the exec wrappers go_wasip1_wasm_exec / go_js_wasm_exec on
# PATH; the wasip1 one runs "wazero" when GOWASIRUNTIME=wazero, the js one
# runs node. wazero is pinned in tools/go.mod and built into ./bin.
WASM_PATH="$(go env GOROOT)/lib/wasm:$ROOT/bin:$PATH"

build_wazero() {
	build_tool wazero github.com/tetratelabs/wazero/cmd/wazero && "$ROOT/bin/wazero" version
}

wasm_test() { # wasm_test GOOS
	env GOOS="$1" GOARCH=wasm GOWASIRUNTIME=wazero PATH="$WASM_PATH" \
		go test -count=1 -timeout "$WASM_TIMEOUT" "${WASM_PKGS[@]}"
}

wasip1_test() { build_wazero && wasm_test wasip1; }

echo
echo "wasm: every package of the root module"
step "wasm wasip1 (wazero)" wasip1_test
step "wasm js (node)" wasm_test js

# Framework adapters built on net/http also run under wasip1 (Go's
# in-process fake network serves httptest there). Fiber cannot: fasthttp.
for d in adapters/gin adapters/echo adapters/echov4; do
	[ -d "$d" ] || continue
	step "wasm wasip1 $d" in_dir "$ROOT/$d" env GOOS=wasip1 GOARCH=wasm GOWASIRUNTIME=wazero PATH="$WASM_PATH" \
		go test -count=1 -timeout "$WASM_TIMEOUT" ./...
done

# --- clean tree --------------------------------------------------------------
# A run must not rewrite tracked files (go.work.sum above all: commit it
# complete) nor leave untracked ones (build outputs go in .gitignore). On a
# clean checkout (CI) the tree must still be clean; on a tree that already
# had changes, the run must not have added to them.
clean_tree() {
	local after
	after=$(tree_state)
	if [ -z "$tree_before" ]; then
		[ -z "$after" ] && return 0
		echo "the run left the git tree dirty (commit these, or ignore build outputs in .gitignore):"
		git -C "$ROOT" status --porcelain=v1 --untracked-files=all | sed 's/^/  /'
		return 1
	fi
	echo "the tree had uncommitted changes before the run: checking only that the run added none"
	[ "$after" = "$tree_before" ] && return 0
	echo "the run changed the git tree (lines: - before, + after):"
	diff <(echo "$tree_before") <(echo "$after") | grep '^[<>]' | sed 's/^</  -/; s/^>/  +/'
	return 1
}
if [ "$in_git" = 1 ]; then
	step "clean tree" clean_tree
else
	echo
	echo "not a git checkout: no clean-tree check"
fi

# --- summary ---------------------------------------------------------------
echo
if [ ${#skipped[@]} -gt 0 ]; then
	echo "skipped (SSEKIT_SKIP=$SSEKIT_SKIP): the tests that drive ${skipped[*]}"
else
	echo "skipped: nothing (SSEKIT_SKIP empty; chromium, nginx and redis-server were required)"
fi
if [ "${SSEKIT_SKIP_DEPS:-}" = 1 ]; then
	echo "not run: scripts/install-deps.sh (SSEKIT_SKIP_DEPS=1)"
fi
if [ "$failed" -gt 0 ]; then
	echo "failed steps:"
	printf '  %s\n' "${failed_steps[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
