#!/usr/bin/env bash
# Lockstep releases of the ssekit modules (docs/RELEASING.md).
#
#   scripts/release.sh [check]           versions.txt against every go.mod (the default)
#   scripts/release.sh set vX.Y.Z        set every released module to vX.Y.Z:
#                                        versions.txt and every ssekit require
#   scripts/release.sh tags              print the tags of the current version
#   scripts/release.sh tags --create     create them (annotated) at HEAD; needs a
#                                        clean tree and tags that do not exist yet
#
# versions.txt names every module of the repository by directory and gives its
# release version ("-": never tagged). A module's tag is "<dir>/<version>", the
# root module's is "<version>", as the go command expects for modules in
# subdirectories. Needs bash, git and go (only "go mod edit", which reads and
# writes go.mod files and never uses the network).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VERSIONS=versions.txt
SEMVER='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'

usage() {
	sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

die() {
	echo "release: $*" >&2
	exit 1
}

dirs=()     # module directories, as in versions.txt ("." for the root)
versions=() # their versions ("-": not released)

read_versions() {
	[ -f "$VERSIONS" ] || die "$VERSIONS is missing"
	local line dir ver extra n=0
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		line=${line%%#*}
		read -r dir ver extra <<<"$line" || true
		[ -z "${dir:-}" ] && continue
		[ -n "${ver:-}" ] && [ -z "${extra:-}" ] || die "$VERSIONS:$n: want \"<directory> <version>\""
		dirs+=("$dir")
		versions+=("$ver")
	done <"$VERSIONS"
	[ ${#dirs[@]} -gt 0 ] || die "$VERSIONS names no module"
}

# printed DIR: DIR/go.mod as "go mod edit -print" normalises it, read once
# by load_go_mods (the functions below run in subshells, which cannot fill a
# cache).
declare -A printed_cache=()
load_go_mods() {
	local dir
	for dir in "${dirs[@]}"; do
		[ -f "$dir/go.mod" ] && printed_cache[$dir]=$(go mod edit -print "$dir/go.mod")
	done
	return 0
}
printed() {
	if [ -n "${printed_cache[$1]+x}" ]; then
		printf '%s\n' "${printed_cache[$1]}"
	else
		go mod edit -print "$1/go.mod"
	fi
}

# module_path DIR: the module path declared by DIR/go.mod.
module_path() {
	printed "$1" | awk '$1 == "module" { gsub(/"/, "", $2); print $2; exit }'
}

# requires DIR: "path version" for every require of DIR/go.mod.
requires() {
	printed "$1" | awk '
		$1 == "require" && $2 == "(" { block = 1; next }
		block && $1 == ")" { block = 0; next }
		block { print $1, $2; next }
		$1 == "require" { print $2, $3 }'
}

# replaces DIR: "path target" for every replace of DIR/go.mod whose left side
# has no version (the only kind this repository uses).
replaces() {
	printed "$1" | awk '
		$1 == "replace" && $2 == "(" { block = 1; next }
		block && $1 == ")" { block = 0; next }
		block && $2 == "=>" { print $1, $3; next }
		$1 == "replace" && $3 == "=>" { print $2, $4 }'
}

# go_work_uses: the directories go.work uses, without a leading "./".
go_work_uses() {
	awk '
		$1 == "use" && $2 == "(" { block = 1; next }
		block && $1 == ")" { block = 0; next }
		block { print $1; next }
		$1 == "use" { print $2 }' go.work | sed -e 's|^\./||' -e 's|/$||' -e 's|^$|.|'
}

# index_of_path PATH: the index in dirs of the module whose path is PATH, or -1.
declare -A by_path=()
index_of_path() {
	if [ -n "${by_path[$1]+x}" ]; then echo "${by_path[$1]}"; else echo -1; fi
}

check() {
	local errs=0 i dir ver path base want rel lockstep="" gomod req_path req_ver j target
	err() {
		echo "release check: $*" >&2
		errs=$((errs + 1))
	}
	base=$(module_path .)
	for i in "${!dirs[@]}"; do
		dir=${dirs[$i]} ver=${versions[$i]}
		if [ ! -f "$dir/go.mod" ]; then
			err "$VERSIONS names $dir, which has no go.mod"
			continue
		fi
		path=$(module_path "$dir")
		want=$base
		[ "$dir" != . ] && want=$base/$dir
		[ "$path" = "$want" ] || err "$dir/go.mod declares module $path, want $want (the tags need path = root path + directory)"
		by_path[$path]=$i
		if [ "$ver" != - ]; then
			[[ $ver =~ $SEMVER ]] || err "$dir: version $ver is not vMAJOR.MINOR.PATCH[-PRERELEASE]"
			if [ -z "$lockstep" ]; then
				lockstep=$ver
			elif [ "$ver" != "$lockstep" ]; then
				err "$dir is at $ver, other modules at $lockstep: the modules are released in lockstep"
			fi
		fi
	done
	[ -n "$lockstep" ] || err "$VERSIONS releases no module"
	for i in "${!dirs[@]}"; do
		[ "${dirs[$i]}" = . ] && [ "${versions[$i]}" = - ] && err "the root module must be released"
	done

	# Every go.mod of the repository is listed.
	while IFS= read -r gomod; do
		rel=${gomod#./}
		rel=${rel%/go.mod}
		[ "$rel" = go.mod ] && rel=.
		local listed=0
		for dir in "${dirs[@]}"; do [ "$dir" = "$rel" ] && listed=1; done
		[ $listed = 1 ] || err "$rel/go.mod is not in $VERSIONS (add it with its version, or \"-\")"
	done < <(find . -name go.mod -not -path './.git/*' -not -path '*/testdata/*' -not -path '*/vendor/*' | sort)

	# Every require of an ssekit module names its release version; every
	# replace of one points at its directory (consumers ignore replaces, so
	# they only serve GOWORK=off builds inside the repository).
	for i in "${!dirs[@]}"; do
		dir=${dirs[$i]}
		[ -f "$dir/go.mod" ] || continue
		while read -r req_path req_ver; do
			[ "$req_path" = "$base" ] || [[ $req_path == "$base"/* ]] || continue
			j=$(index_of_path "$req_path")
			if [ "$j" = -1 ]; then
				err "$dir/go.mod requires $req_path, which $VERSIONS does not name"
			elif [ "${versions[$j]}" = - ]; then
				err "$dir/go.mod requires $req_path, which is never released"
			elif [ "$req_ver" != "${versions[$j]}" ]; then
				err "$dir/go.mod requires $req_path $req_ver, want ${versions[$j]} (scripts/release.sh set ${versions[$j]})"
			fi
		done < <(requires "$dir")
		while read -r req_path target; do
			[ "$req_path" = "$base" ] || [[ $req_path == "$base"/* ]] || continue
			j=$(index_of_path "$req_path")
			[ "$j" = -1 ] && {
				err "$dir/go.mod replaces $req_path, which $VERSIONS does not name"
				continue
			}
			case $target in ./* | ../*) ;; *)
				err "$dir/go.mod replaces $req_path with $target: only a relative directory is harmless"
				continue
				;;
			esac
			if [ "$(cd "$dir/$target" 2>/dev/null && pwd)" != "$(cd "${dirs[$j]}" && pwd)" ]; then
				err "$dir/go.mod replaces $req_path with $target, which is not ${dirs[$j]}"
			fi
		done < <(replaces "$dir")
	done

	# go.work joins every module for development.
	local uses
	uses=$(go_work_uses)
	for dir in "${dirs[@]}"; do
		grep -qxF -- "$dir" <<<"$uses" || err "go.work does not use ./$dir"
	done

	if [ $errs -gt 0 ]; then
		echo "release check: $errs problem(s)" >&2
		return 1
	fi
	echo "release check: ok (${#dirs[@]} modules, released at $lockstep)"
}

set_version() {
	local new=$1 i dir req_path req_ver j tmp base
	[[ $new =~ $SEMVER ]] || die "$new is not vMAJOR.MINOR.PATCH[-PRERELEASE]"
	base=$(module_path .)
	for i in "${!dirs[@]}"; do
		[ -f "${dirs[$i]}/go.mod" ] && by_path[$(module_path "${dirs[$i]}")]=$i
	done
	tmp=$(mktemp "$VERSIONS.XXXXXX")
	awk -v new="$new" '
		{ line = $0; sub(/#.*/, "", line) }
		split(line, f) == 2 && f[2] != "-" { printf "%-31s %s\n", f[1], new; next }
		{ print }' "$VERSIONS" >"$tmp"
	mv "$tmp" "$VERSIONS"
	for i in "${!versions[@]}"; do
		[ "${versions[$i]}" != - ] && versions[i]=$new
	done
	for i in "${!dirs[@]}"; do
		dir=${dirs[$i]}
		[ -f "$dir/go.mod" ] || continue
		while read -r req_path req_ver; do
			[ "$req_path" = "$base" ] || [[ $req_path == "$base"/* ]] || continue
			j=$(index_of_path "$req_path")
			[ "$j" = -1 ] && die "$dir/go.mod requires $req_path, which $VERSIONS does not name"
			[ "$req_ver" = "${versions[$j]}" ] && continue
			go mod edit -require="$req_path@${versions[$j]}" "$dir/go.mod"
			printed_cache[$dir]=$(go mod edit -print "$dir/go.mod")
			echo "$dir/go.mod: $req_path $req_ver -> ${versions[$j]}"
		done < <(requires "$dir")
	done
	check
	echo
	echo "next: review and commit (git add $VERSIONS '**/go.mod'; git commit -m \"release $new\"),"
	echo "      then scripts/release.sh tags --create"
}

tag_names() {
	local i
	for i in "${!dirs[@]}"; do
		[ "${versions[$i]}" = - ] && continue
		if [ "${dirs[$i]}" = . ]; then
			echo "${versions[$i]}"
		else
			echo "${dirs[$i]}/${versions[$i]}"
		fi
	done
}

tags() {
	local create=${1:-} t tagged=()
	case $create in "" | --create) ;; *) usage ;; esac
	check >&2
	if [ "$create" != --create ]; then
		tag_names
		return
	fi
	git diff --quiet HEAD -- || die "the working tree has uncommitted changes: tag a commit, not a tree"
	while IFS= read -r t; do
		git rev-parse -q --verify "refs/tags/$t" >/dev/null && die "tag $t exists already"
	done < <(tag_names)
	while IFS= read -r t; do
		git tag -a "$t" -m "ssekit $t"
		echo "created $t"
		tagged+=("$t")
	done < <(tag_names)
	echo
	echo "push them with: git push origin ${tagged[*]}"
}

read_versions
load_go_mods
cmd=${1:-check}
[ $# -gt 0 ] && shift
case $cmd in
check) [ $# -eq 0 ] || usage && check ;;
set) [ $# -eq 1 ] || usage && set_version "$1" ;;
tags) [ $# -le 1 ] || usage && tags "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
