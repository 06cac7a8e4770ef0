// Package p2p is the libp2p layer of a Verity validator node: one host whose
// identity is the validator's secp256k1 key, gossipsub with the Verity topics
// (Kinds: jobs, ballots, certificates, evidence), a validator per topic that
// runs before a message is delivered or forwarded, and peer discovery through
// bootstrap peers.
//
// Gossip is configured for a closed validator network:
//
//   - Messages are not signed by pubsub and carry no author (StrictNoSign,
//     no author); jobs, ballots, certificates and evidence carry their own
//     secp256k1 signatures, which the topic validators check.
//   - A message's id is the SHA-256 of its data, so the same bytes published
//     twice, by one node or by two, are one message.
//   - The outbound, validation and subscription queues are raised so that a
//     burst of messages is not silently dropped.
//   - Peer scoring penalises every message a validator rejects, and, through
//     Penalise, what gossip does not see (a direct message the handler
//     rejects, a bad catch-up answer); a peer that keeps sending such
//     messages is graylisted, its traffic ignored, and it is disconnected
//     and banned by the connection gater (Config.BanDuration, and as long
//     as its score stays below the graylist threshold).
//   - A node publishes its own messages to every connected topic peer (flood
//     publishing), not only to its mesh; peers forward them along their mesh.
//   - Heartbeats are fast so that a fresh mesh forms within a fraction of a
//     second; wait for topic peers with WaitForPeers rather than sleeping.
//   - Peers are found through the bootstrap peers: a node keeps connected to
//     them (retrying with backoff) and, while it has fewer than
//     Config.TargetPeers connections, asks them over /verity/<network>/peers/1
//     for the topic peers they know and dials some. Gossipsub peer exchange
//     is off: a node pruned from a full mesh is handed no peers to dial.
//   - A node that missed certificates asks a peer for them over
//     /verity/<network>/certs/sync/4 (HandleCertSync, RequestCertSync): one
//     request, an answer of length-prefixed items, bounded on both sides.
//   - Messages sent while a send of their kind to the same place is under
//     way queue and go together as one bundle (bundle.go, queue.go:
//     PublishQueued, SendDirectQueued); under load a send waits
//     Config.BundleLinger for more. Validators judge a bundle's messages
//     one by one and subscribers receive them one by one.
//   - Only TCP and QUIC are enabled, relays and NAT port mapping are off and
//     there is no mDNS: the node dials only peers it is told about.
//
// Logs go to the go-log subsystem "verity/p2p"; pubsub and libp2p log through
// their own go-log subsystems ("pubsub", ...).
package p2p
