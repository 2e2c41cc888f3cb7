#!/usr/bin/env bash
# Checks the Kumori deployment module without a cluster, against the
# stand-in kmv in cue.mod/: every package vets, the deployment, service and
# component manifests export to concrete JSON, the worker count that the
# scaler rewrites in deploy/num_workers reaches the deployment, and a count
# outside the scaler's bounds is refused.
#
# What cue v0.17 cannot check directly. kumorictl reads the `deployment`
# field, which deploy/deployment.cue builds as every public Kumori example
# does:
#
#	deployment: (k.#DoDeploy & {_params: manifest: #Manifest}).deployment
#
# _params is a hidden field, and cue v0.17 scopes hidden fields to the
# package that writes them: the _params written in the deployment package is
# not the one kmv's #DoDeploy reads, so `cue export` of `deployment` is
# incomplete. The module is not bent to suit cue (kumorictl and the real
# kmv are what must accept it). Instead this script
#   - vets with -c=false, which allows that one incomplete value;
#   - exports the manifests themselves (#Manifest), which must be concrete;
#   - emulates the hand-off in a throwaway copy where the stand-in kmv is
#     part of the deployment package, the only arrangement in which cue
#     v0.17 lets a hidden field cross. That shows that `deployment` is
#     concrete once _params arrives, and fails if the hand-off is written
#     any other way (#params, say, which a closed definition accepts and
#     ignores). It is an emulation: only kumorictl with the real kmv can
#     say that the real hand-off works.
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

# vet_module DIR: every package valid; `deployment` may be incomplete (see
# above), everything else is checked by the exports.
vet_module() {
	(cd "$1" && "$cue" vet -c=false ./deploy/...)
}

# export_field DIR EXPR: one value of the deployment package.
export_field() {
	(cd "$1" && "$cue" export ./deploy -e "$2")
}

# subst FILE SCRIPT: edit FILE in place with sed SCRIPT (sed -i differs
# between GNU and BSD sed).
subst() {
	sed "$2" "$1" >"$1.new" && mv "$1.new" "$1"
}

# emulate DIR: turn the module copy in DIR into the emulation of the
# _params hand-off: the stand-in kmv's files join the deployment package,
# and the deployment calls that copy of #DoDeploy.
emulate() {
	local f
	if ! grep -q 'k\.#DoDeploy' "$1/deploy/deployment.cue"; then
		echo "deploy/deployment.cue does not call k.#DoDeploy" >&2
		return 1
	fi
	for f in "$1"/cue.mod/pkg/kumori.systems/kumori/kmv/*.cue; do
		sed 's/^package kmv$/package deployment/' "$f" >"$1/deploy/kmv_$(basename "$f")"
	done
	subst "$1/deploy/deployment.cue" 's/k\.#DoDeploy/#DoDeploy/g'
}

# handoff DIR: the worker count in the `deployment` value that the
# emulated hand-off builds, once every field of it is concrete.
handoff() {
	(cd "$1" && "$cue" vet -c ./deploy >&2 &&
		"$cue" export ./deploy -e "deployment.description.hsize.worker.$instances")
}

# The exported field holding a role's count ($_instances is CUE's label).
# shellcheck disable=SC2016
instances='$_instances'
workers="#Manifest.description.hsize.worker.$instances"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# copy NAME: a fresh copy of the module under $tmp/NAME.
copy() {
	rm -rf "${tmp:?}/$1"
	mkdir -p "$tmp/$1"
	cp -R "$root/cue.mod" "$root/deploy" "$tmp/$1/"
	echo "$tmp/$1"
}

# 1. The committed worker count file has the shape the scaler writes.
committed=$(sed -n 's/^#NUM_WORKERS: \([0-9][0-9]*\)$/\1/p' "$root/deploy/num_workers/num_workers.cue")
if [[ -n $committed ]] && diff <(num_workers_file "$committed") "$root/deploy/num_workers/num_workers.cue" >/dev/null; then
	pass "num_workers.cue has the shape the scaler rewrites"
else
	fail "num_workers.cue must be exactly: package num_workers, a blank line, #NUM_WORKERS: <n>"
fi

# 2. The module as committed vets.
if vet_module "$root" >"$tmp/vet.log" 2>&1; then
	pass "cue vet -c=false ./deploy/..."
else
	cat "$tmp/vet.log" >&2
	fail "cue vet"
fi

# 3. The manifests export to concrete JSON: the deployment's, the
# service's, and each component's. A component leaves its image to the
# deployment, so it is exported as the deployment configures it, from the
# role that runs it.
manifests=("#Manifest" "#Manifest.description.service")
for dir in "$root"/deploy/components/*/; do
	manifests+=("#Manifest.description.service.description.role.$(basename "$dir").artifact")
done
for m in "${manifests[@]}"; do
	if export_field "$root" "$m" >"$tmp/manifest.json" 2>"$tmp/export.log"; then
		pass "cue export -e '$m'"
	else
		cat "$tmp/export.log" >&2
		fail "cue export -e '$m'"
	fi
done
got=$(export_field "$root" "$workers" 2>&1 || true)
if [[ $got == "$committed" ]]; then
	pass "worker instances follow num_workers ($got)"
else
	fail "worker instances: got '$got', want '$committed'"
fi

# 4. The _params hand-off, emulated: `deployment` is concrete and carries
# the committed count.
dir=$(copy handoff)
got=
if emulate "$dir" 2>"$tmp/handoff.log"; then
	got=$(handoff "$dir" 2>>"$tmp/handoff.log" || true)
fi
if [[ $got == "$committed" ]]; then
	pass "emulated _params hand-off: deployment is concrete, $got worker instances"
else
	cat "$tmp/handoff.log" >&2
	fail "emulated _params hand-off: got '$got'"
fi

# 5. The emulation can fail: the same copy handing the manifest over as
# #params (what this module wrote before) leaves `deployment` incomplete.
dir=$(copy params)
subst "$dir/deploy/deployment.cue" 's/{_params: manifest:/{#params: manifest:/'
if ! grep -q '#params: manifest:' "$dir/deploy/deployment.cue"; then
	fail "deployment.cue no longer hands the manifest over as {_params: manifest: #Manifest}"
elif emulate "$dir" 2>/dev/null && handoff "$dir" >/dev/null 2>&1; then
	fail "a hand-off through #params should leave deployment incomplete"
else
	pass "a hand-off through #params is refused"
fi

# 6. A copy rewritten as the scaler would (5 workers) still vets and
# exports, with 5 worker instances, also through the emulated hand-off.
dir=$(copy module)
num_workers_file 5 >"$dir/deploy/num_workers/num_workers.cue"
got=
if vet_module "$dir" >"$tmp/vet5.log" 2>&1; then
	got=$(export_field "$dir" "$workers" 2>&1 || true)
fi
if [[ $got == 5 ]]; then
	pass "rewritten to 5 workers: vets and exports 5 worker instances"
else
	cat "$tmp/vet5.log" >&2
	fail "rewritten to 5 workers: got '$got'"
fi
emulated=$(copy module5)
cp "$dir/deploy/num_workers/num_workers.cue" "$emulated/deploy/num_workers/"
got=
if emulate "$emulated" 2>/dev/null; then
	got=$(handoff "$emulated" 2>/dev/null || true)
fi
if [[ $got == 5 ]]; then
	pass "rewritten to 5 workers: the emulated deployment has 5 worker instances"
else
	fail "rewritten to 5 workers, emulated hand-off: got '$got'"
fi

# 7. A count above the scaler's maximum is refused.
max=$(export_field "$root" '#Manifest.description.configuration.parameter.scaler.maxworkers' 2>/dev/null || true)
if [[ -n $max ]]; then
	num_workers_file $((max + 1)) >"$dir/deploy/num_workers/num_workers.cue"
	if vet_module "$dir" >/dev/null 2>&1; then
		fail "$((max + 1)) workers (above maxworkers $max) should not vet"
	else
		pass "$((max + 1)) workers (above maxworkers $max) is refused"
	fi
else
	fail "cannot read the scaler's maxworkers from the deployment"
fi

echo "deploy: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
