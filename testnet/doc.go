// Package testnet builds and runs local Verity networks.
//
// Init writes a testnet directory: a genesis.json naming every validator, one
// home per node (keystore, password file, config.toml with loopback listen
// addresses and bootstrap peers) and a nodes.json that tells tools and people
// where each node listens. The same directory runs in one process
// (StartInProcess) or as one operating-system process per node
// (StartProcesses), the way `verity testnet up` runs it. NewEphemeral starts a
// network with random keys and no files but the nodes' stores, for tests and
// the demo.
package testnet
