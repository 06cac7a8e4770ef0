// Package node is a Verity validator: it judges the claims assigned to it,
// aggregates the jobs it accepts as gateway into certificates, and keeps
// every certificate and piece of evidence it sees. The protocol rules are
// the consensus package's; this package moves messages between them, the
// network (node/p2p), the store (node/store) and the HTTP API.
//
// A Node wires four parts, each in its own file with its own state and
// locks, and holds no protocol state itself:
//
//   - gateway (gateway.go): starts the jobs this node accepts, adds the
//     ballots sent for them, expires them at their deadline and issues
//     their certificates; each job has a lock of its own.
//   - validator (validator.go): judges the jobs assigned to this node,
//     signs, stores and sends its ballots.
//   - observer (observer.go, catchup.go): takes every certificate and
//     piece of evidence, from gossip and from catch-up, and keeps each
//     validator's agreement counts.
//   - httpAPI (api.go, auth.go, admin.go, httpserver.go): routes,
//     handlers, client tokens and rate limits, connection and stream
//     bounds; the only code that knows HTTP status codes (httpStatus).
//
// Node itself (node.go) builds, starts and stops them; records.go holds
// what it tells of a job (Job, Audit), options.go and config.go how it is
// configured, with every default in one place, clock.go the Clock its
// timers run on, and tasks.go the tracking of its goroutines. signing.go
// holds batchSigner, through which the validator signs its ballots and the
// gateway its certificates: a message that finds it idle is signed alone
// at once, the messages ready meanwhile all with one batch signature.
//
// The flow of one job, with the function or type that does each step:
//
//	client ──POST /v1/verify──▶ httpAPI.handleVerify (token, rate, body)
//	                               │
//	gateway                        ▼
//	  gateway.submit: jobRule ─▶ decompose ─▶ newJob (consensus.Job, signed)
//	          ─▶ accept: startLocked (consensus.Tally, deadline timer),
//	             gossip on "jobs", store; then job.accepted /
//	             claims.extracted events and the first ballot counted
//	                               │
//	every validator                ▼
//	  validator.validateJob: decodeJobShape (consensus.Job.Validate),
//	               replay check, consensus.Job.VerifySignature, deadline
//	  validator.onJob ─▶ castBallot: the job's assignment; Options.Ballots
//	           (a BallotPolicy, Honest by default) gives the verdicts;
//	           signAndSend: sign (batchSigner: alone, or with the ballots
//	           ready at the same moment under one consensus.SignBallotBatch
//	           signature), store, sendBallot (straight to the gateway, or
//	           gossip on "ballots")
//	                               │
//	gateway                        ▼
//	  gateway.checkBallot: DecodeBallot (consensus.Ballot.Validate, signature)
//	  gateway.addBallot: observer's ballot book (equivocation evidence,
//	            consensus.Ballot.Conflicts), consensus.Tally.AddVerifiedBallot,
//	            ballot.attached and claim.decided events; when the tally is
//	            done, or at the deadline (expire), finalizeLocked ─▶ issue:
//	            the gateway signs the consensus.Certificate (batchSigner,
//	            as ballots), stores it, gossips it
//	                               │
//	every node                     ▼
//	  observer.validateCert / checkCert: consensus.VerifyCertificate ─▶
//	  storeCert, agreement counts; catch-up (observer.catchUpLoop) fetches
//	  certificates missed while down.
//
// Re-announcements (gateway.reannounce) make validators that missed a job
// answer; Node.resume restarts unfinished jobs after a restart. Time comes
// from Options.Clock, timers included. A Node's goroutines are tracked
// (tasks) and end with Stop.
package node
