// Package bench is Verity's load generator: it starts a network of
// validator nodes (in this process, or one process per node), submits
// outputs of arithmetic claims to them at a fixed rate (open loop) or with a
// fixed number of jobs in flight (closed loop), and reports the time from
// submission to certificate, throughput, CPU and memory per certificate and
// gossip traffic per certificate.
//
// The claims are "<a> + <b> = <a+b>." sentences judged by the arithmetic
// verifier, which answers in microseconds: what is measured is the network
// (gossip, signatures, tally, durable store writes), not a verifier backend.
//
// Run measures one configuration; Scaling runs several network sizes and
// WriteScalingSVG draws them.
package bench
