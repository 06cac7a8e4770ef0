// Package testnet builds and runs local Verity networks, injects faults
// into them and checks them afterwards.
//
// Init writes a testnet directory: a genesis.json naming every validator, one
// home per node (keystore, password file, config.toml with loopback listen
// addresses and bootstrap peers) and a nodes.json that tells tools and people
// where each node listens. A Manifest (TOML, LoadManifest) describes the
// network, each node's stake, verifier and behaviour (honest or an
// adversary), and a schedule of perturbations that Init writes to
// schedule.json. The same directory runs in one process (StartInProcess) or
// as one operating-system process per node (StartProcesses), the way
// `verity testnet up` runs it. NewEphemeral starts a network with random
// keys and no files but the nodes' stores, for tests and the demo.
//
// Cluster is what a load generator drives either way: a Network in this
// process, or a ProcessCluster (StartProcessCluster) over the nodes' HTTP
// APIs.
//
// Perturb kills, restarts, pauses, resumes, disconnects and connects a node
// of a process network; Network.Perturb does what applies in one process.
// RunSchedule applies a schedule, and Processes.Watch tells a node a
// perturbation ended (its home holds the PerturbedFile marker) from one
// that failed; Processes.Supervise does both for a running process network. Check reads every node's store and reports certificates that
// fail verification, claims decided both ways on different nodes, gateway
// jobs left provisional past their deadline, and certificates lost since a
// Snapshot.
package testnet
