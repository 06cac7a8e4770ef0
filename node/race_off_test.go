//go:build !race

package node_test

// raceEnabled says the race detector is on: the load tests then log their
// latencies instead of bounding them.
const raceEnabled = false
