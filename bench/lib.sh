# Sourced by the benchmark scripts after they cd to the repository root: a work directory,
# removed on exit once every process whose pid was added to pids has been killed and waited
# for (rtbusd flushes its store when it stops); and machine, the line that heads a report.
work=$(mktemp -d)
export RTBUS_NTP=off # rtbusd asks the public NTP pool by default; benchmarks stay on loopback
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
machine() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(go version)"
}
