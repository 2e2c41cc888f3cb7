#!/usr/bin/env bash
# Checks the Kumori deployment module without a cluster: every package vets,
# the deployment exports to concrete JSON, and the worker count that the
# scaler rewrites in deploy/num_workers reaches the deployment (and a count
# outside the scaler's bounds is refused).
#
# Uses the cue binary named by $CUE, else the one on PATH.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cue=${CUE:-$(command -v cue || true)}
if [[ -z $cue ]]; then
	echo "deploy/check.sh: no cue: set CUE or run go install cuelang.org/go/cmd/cue@v0.17.1" >&2
	exit 1
fi

passed=0
failed=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1" >&2; failed=$((failed + 1)); }

# The scaler rewrites this file whole, so it must keep exactly this shape.
num_workers_file() { printf 'package num_workers\n\n#NUM_WORKERS: %s\n' "$1"; }

# vet_module DIR: what kumorictl needs: every package valid and the
# deployment concrete.
vet_module() {
	(cd "$1" && "$cue" vet ./deploy/... && "$cue" vet -c ./deploy)
}

# export_field DIR EXPR: one value of the exported deployment package.
export_field() {
	(cd "$1" && "$cue" export ./deploy -e "$2")
}

# The exported field holding the worker count ($_instances is CUE's label).
# shellcheck disable=SC2016
workers='deployment.description.hsize.worker.$_instances'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The committed worker count file has the shape the scaler writes.
committed=$(sed -n 's/^#NUM_WORKERS: \([0-9][0-9]*\)$/\1/p' "$root/deploy/num_workers/num_workers.cue")
if [[ -n $committed ]] && diff <(num_workers_file "$committed") "$root/deploy/num_workers/num_workers.cue" >/dev/null; then
	pass "num_workers.cue has the shape the scaler rewrites"
else
	fail "num_workers.cue must be exactly: package num_workers, a blank line, #NUM_WORKERS: <n>"
fi

# 2. The module as committed vets and exports, with the committed count.
if vet_module "$root" >"$tmp/vet.log" 2>&1; then
	pass "cue vet ./deploy/... and cue vet -c ./deploy"
else
	cat "$tmp/vet.log" >&2
	fail "cue vet"
fi
if (cd "$root" && "$cue" export ./deploy >"$tmp/deployment.json" 2>"$tmp/export.log"); then
	pass "cue export ./deploy"
else
	cat "$tmp/export.log" >&2
	fail "cue export ./deploy"
fi
got=$(export_field "$root" "$workers" 2>&1 || true)
if [[ $got == "$committed" ]]; then
	pass "worker instances follow num_workers ($got)"
else
	fail "worker instances: got '$got', want '$committed'"
fi

# 3. A copy rewritten as the scaler would (5 workers) still vets and
# exports, with 5 worker instances.
mkdir -p "$tmp/module"
cp -R "$root/cue.mod" "$root/deploy" "$tmp/module/"
num_workers_file 5 >"$tmp/module/deploy/num_workers/num_workers.cue"
got=
if vet_module "$tmp/module" >"$tmp/vet5.log" 2>&1; then
	got=$(export_field "$tmp/module" "$workers" 2>&1 || true)
fi
if [[ $got == 5 ]]; then
	pass "rewritten to 5 workers: vets and exports 5 worker instances"
else
	cat "$tmp/vet5.log" >&2
	fail "rewritten to 5 workers: got '$got'"
fi

# 4. A count above the scaler's maximum is refused.
max=$(export_field "$root" 'deployment.description.configuration.parameter.scaler.maxworkers' 2>/dev/null || true)
if [[ -n $max ]]; then
	num_workers_file $((max + 1)) >"$tmp/module/deploy/num_workers/num_workers.cue"
	if vet_module "$tmp/module" >/dev/null 2>&1; then
		fail "$((max + 1)) workers (above maxworkers $max) should not vet"
	else
		pass "$((max + 1)) workers (above maxworkers $max) is refused"
	fi
else
	fail "cannot read the scaler's maxworkers from the deployment"
fi

echo "deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
