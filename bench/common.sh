# bench/common.sh — shell parts the benchmarks share. Sourced, never run:
#
#     bench_name=ingest; source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
#
# Sets bench (this directory), root (the repository), corpus (the shared corpus, or
# STSWARD_CORPUS) and py (python3, or PYTHON), and defines say, die, at_exit, find_stsward,
# find_templates and start_postgres below. The sourcing script sets `bench_name` (for messages)
# first, and `set -euo pipefail` itself.

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$bench/.." && pwd)"
corpus="${STSWARD_CORPUS:-$root/../shared/corpus}"
py="${PYTHON:-python3}"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${bench_name:-bench}" "$*" >&2; exit 1; }

# at_exit CMD: run CMD (a string, eval'd) when the script exits, the last registered first.
exit_cmds=()
run_exit_cmds() {
    local i
    for (( i = ${#exit_cmds[@]} - 1; i >= 0; i-- )); do eval "${exit_cmds[$i]}" || true; done
}
at_exit() {
    exit_cmds+=("$1")
    trap run_exit_cmds EXIT
}

# find_stsward: sets stsward to STSWARD_BIN, or builds the release binary and points to it.
find_stsward() {
    if [[ -n "${STSWARD_BIN:-}" ]]; then
        stsward="$STSWARD_BIN"
    else
        say "building stsward (release)"
        (cd "$root" && cargo build --release --quiet -p stsward) || die "cargo build -p stsward failed"
        stsward="${CARGO_TARGET_DIR:-$root/target}/release/stsward"
    fi
    [[ -x "$stsward" ]] || die "$stsward is not an executable"
}

# find_templates: sets templates to the corpus's TLS-RPT reports that `stsward report parse`
# accepts on their own (needs stsward).
find_templates() {
    [[ -d "$corpus/tlsrpt/json" ]] || die "corpus not found at $corpus (set STSWARD_CORPUS)"
    corpus="$(cd "$corpus" && pwd)"
    templates=()
    local f
    for f in "$corpus"/tlsrpt/json/*.json "$corpus"/tlsrpt/gz/*.gz; do
        [[ -e "$f" ]] || continue
        if "$stsward" report parse "$f" >/dev/null 2>&1; then templates+=("$f"); fi
    done
    [[ ${#templates[@]} -gt 0 ]] || die "stsward accepted none of the corpus reports"
}

# start_postgres DIR DB: a throwaway PostgreSQL cluster in DIR (removed first) on a random
# loopback port, with database DB, stopped when the script exits. Sets pg_url. Returns 1 when
# PostgreSQL is not installed (STSWARD_PG_BINDIR overrides where its programs are).
start_postgres() {
    local pg="$1" db="$2" bin port
    bin="${STSWARD_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
    [[ -x "$bin/initdb" ]] || return 1
    rm -rf "$pg"; mkdir -p "$pg"
    pg_as=()
    if [[ "$(id -u)" == 0 ]]; then chown postgres "$pg"; pg_as=(runuser -u postgres --); fi
    port=$(( 20000 + RANDOM % 20000 ))
    "${pg_as[@]}" "$bin/initdb" -D "$pg/data" -U stsward --auth=trust >/dev/null
    "${pg_as[@]}" "$bin/pg_ctl" -D "$pg/data" -l "$pg/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $pg" start >/dev/null
    at_exit "\"\${pg_as[@]}\" '$bin/pg_ctl' -D '$pg/data' -m fast stop >/dev/null 2>&1"
    "${pg_as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U stsward "$db"
    pg_url="postgres://stsward@127.0.0.1:$port/$db"
}
