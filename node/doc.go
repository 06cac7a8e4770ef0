// Package node is a Verity validator: it judges the claims assigned to it,
// aggregates the jobs it accepts as gateway into certificates, and keeps
// every certificate and piece of evidence it sees. The protocol rules are
// the consensus package's; this package moves messages between them, the
// network (node/p2p), the store (node/store) and the HTTP API.
//
// The flow of one job, with the function or type that does each step:
//
//	client ──POST /v1/verify──▶ handleVerify (HTTP: auth, rate limit, body)
//	                               │
//	gateway                        ▼
//	  Submit: jobRule ─▶ decompose ─▶ newJob (consensus.Job, signed)
//	          ─▶ acceptJob: store, startAggregation (consensus.Tally),
//	             job.accepted / claims.extracted events, gossip on "jobs"
//	                               │
//	every validator                ▼
//	  validateJob: decodeJobShape (consensus.Job.Validate), replay check,
//	               consensus.Job.VerifySignature, deadline
//	  onJob ─▶ castBallot: the job's assignment; Options.Ballots
//	           (a BallotPolicy, Honest by default) gives the verdicts;
//	           signAndSend: consensus.SignBallot, store, sendBallot
//	           (straight to the gateway, or gossip on "ballots")
//	                               │
//	gateway                        ▼
//	  checkBallot: DecodeBallot (consensus.Ballot.Validate, signature)
//	  onBallot: ballot book (equivocation evidence, consensus.Ballot.Conflicts),
//	            consensus.Tally.AddVerifiedBallot, ballot.attached and
//	            claim.decided events; when the tally is done, or at the
//	            deadline (expire), finalizeLocked ─▶ issue: the gateway
//	            signs the consensus.Certificate, stores it, gossips it
//	                               │
//	every node                     ▼
//	  validateCert / checkCert: consensus.VerifyCertificate ─▶ storeCert,
//	  agreement counts; catch-up fetches certificates missed while down.
//
// Re-announcements (reannounce) make validators that missed a job answer;
// resume restarts unfinished jobs after a restart. A Node's goroutines are
// tracked and end with Stop.
package node
