package p2p

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer score thresholds. A rejected message costs its sender
// invalidMessageWeight times the square of its count of rejected messages, so
// a peer stops receiving gossip after 7 rejected messages, is no longer
// published to after 9 and is graylisted (everything it sends is ignored)
// after 13; a graylisted peer is also disconnected and banned (see
// Network.Penalise). The count decays to a hundredth in ten minutes.
// Penalties outside gossip (direct messages, catch-up responses) count the
// same way, as the application-specific score.
const (
	GossipThreshold   = -4000.0
	PublishThreshold  = -8000.0
	GraylistThreshold = -16000.0

	invalidMessageWeight = -100.0

	// topicScoreCap bounds the positive part of a peer's score; the
	// application-specific part is penalties only, so no peer scores above
	// it.
	topicScoreCap = 30.0
)

// scoreParams returns the peer score parameters of a network: the same for
// each of its topics. The positive terms (time in mesh, first
// deliveries) are small and capped so that good behaviour never offsets a
// handful of rejected messages; mesh delivery rate penalties are off because
// a quiet topic is normal here. app is the application-specific score: the
// penalties outside gossip.
func scoreParams(networkID uint64, app func(peer.ID) float64) *pubsub.PeerScoreParams {
	topics := make(map[string]*pubsub.TopicScoreParams, len(Kinds))
	for _, kind := range Kinds {
		topics[TopicName(networkID, kind)] = &pubsub.TopicScoreParams{
			TopicWeight: 1,

			TimeInMeshWeight:  0.01,
			TimeInMeshQuantum: time.Second,
			TimeInMeshCap:     300,

			FirstMessageDeliveriesWeight: 0.5,
			FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
			FirstMessageDeliveriesCap:    20,

			InvalidMessageDeliveriesWeight: invalidMessageWeight,
			InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
		}
	}
	return &pubsub.PeerScoreParams{
		Topics:        topics,
		TopicScoreCap: topicScoreCap,

		AppSpecificScore:  app,
		AppSpecificWeight: 1,

		// Testnets run many validators behind one address: no IP
		// colocation penalty.
		IPColocationFactorWeight: 0,

		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),

		DecayInterval: pubsub.DefaultDecayInterval,
		DecayToZero:   pubsub.DefaultDecayToZero,
		RetainScore:   time.Hour,
	}
}

// scoreThresholds returns the thresholds that go with scoreParams. Nodes
// send no peer exchange (startPubSub), and take none: the threshold is
// above any score a peer can reach. Otherwise any peer, with a validator
// key or none, could prune a node with a list of peers of its choosing
// (identities cost nothing) for the node to dial.
func scoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             GossipThreshold,
		PublishThreshold:            PublishThreshold,
		GraylistThreshold:           GraylistThreshold,
		AcceptPXThreshold:           topicScoreCap + 1,
		OpportunisticGraftThreshold: 1,
	}
}
