// Package sim runs many validators of the real node code in one process
// over a simulated wide-area network, and measures what a user and an
// operator would see: time to certificate beside the network floor,
// certificates final or not, certified-wrong claims when adversaries lie,
// CPU and bytes per certificate.
//
// The network is go-libp2p's QUIC transport over github.com/marcopolo/simnet
// (as in go-libp2p's x/simlibp2p): virtual links with a bandwidth each way
// per node and a latency per packet, here one way between the regions of
// its two ends (DefaultRTTMS, published round trips between AWS regions).
// A Scenario (TOML, docs/simulation.md) sets validators, stake, regions,
// links, consensus settings, load, adversaries, churn and a seed that fixes
// every draw.
//
// Run runs in whatever time it is called in: the machine's clock for
// `verity sim`, virtual time inside a testing/synctest bubble for the
// simulation test tier (TestScenario, driven by scripts/sim.sh --virtual),
// where processing takes no time and a seed gives the same latencies run
// after run. The report says which.
package sim
