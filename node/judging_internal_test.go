package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/verity-network/verity/api"
	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/node/p2p"
	"github.com/verity-network/verity/sigs"
)

// holdNextSigner is a KeySigner that, once armed, holds the next
// signature until release is closed.
type holdNextSigner struct {
	*sigs.KeySigner
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // closed when the held signature starts
	release chan struct{}
}

func (s *holdNextSigner) SignDigest(d common.Hash) ([]byte, error) {
	s.mu.Lock()
	hold := s.armed
	s.armed = false
	s.mu.Unlock()
	if hold {
		close(s.held)
		<-s.release
	}
	return s.KeySigner.SignDigest(d)
}

func (s *holdNextSigner) arm() {
	s.mu.Lock()
	s.armed = true
	s.mu.Unlock()
}

// judgingPolicy votes true on every claim, arming the signer when it
// judges the first job and telling judged about every job it judges.
type judgingPolicy struct {
	signer *holdNextSigner
	once   sync.Once
	judged chan common.Hash
}

func (p *judgingPolicy) Ballots(_ context.Context, j *Judgement) [][]claims.Verdict {
	// The first job's ballot is the next signature: it is held.
	p.once.Do(p.signer.arm)
	p.judged <- j.Job.JobID
	v := make([]claims.Verdict, len(j.Mine))
	for i := range v {
		v[i] = claims.True
	}
	return [][]claims.Verdict{v}
}

// TestJudgingSlotFreedBeforeTheBallotIsSigned: a validator that judges
// one job at a time (JudgeConcurrency 1) judges the next job while the
// ballot of the one before is still being signed (and then stored and
// sent): the judging slot bounds the judging, not the signing linger and
// the durable commit that follow it.
func TestJudgingSlotFreedBeforeTheBallotIsSigned(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer := &holdNextSigner{KeySigner: sigs.NewKeySigner(key), held: make(chan struct{}), release: make(chan struct{})}
	policy := &judgingPolicy{signer: signer, judged: make(chan common.Hash, 2)}
	g := &consensus.Genesis{NetworkID: 9, Validators: []consensus.Validator{{Name: "solo", Address: crypto.PubkeyToAddress(key.PublicKey), Stake: 1}}}
	n, err := New(Options{Key: key, Genesis: g, Verifier: claims.Arithmetic{}, Ballots: policy, JudgeConcurrency: 1,
		DataDir: t.TempDir(), ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	n.signer = signer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	defer func() {
		select {
		case <-signer.release:
		default:
			close(signer.release)
		}
	}()

	first, err := n.Submit(ctx, api.VerifyRequest{Output: "2 + 2 = 4."})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
	judged := func() common.Hash {
		t.Helper()
		select {
		case id := <-policy.judged:
			return id
		case <-ctx.Done():
			t.Fatalf("no job judged: %v", ctx.Err())
			return common.Hash{}
		}
	}
	if id := judged(); id != first.JobID {
		t.Fatalf("judged %s first, want %s", id.Hex(), first.JobID.Hex())
	}
	wait("the first ballot's signature is not held", signer.held)

	second, err := n.Submit(ctx, api.VerifyRequest{Output: "3 + 3 = 6."})
	if err != nil {
		t.Fatal(err)
	}
	if id := judged(); id != second.JobID {
		t.Fatalf("judged %s second, want %s", id.Hex(), second.JobID.Hex())
	}
	// Judged while the first job's ballot was still held at its
	// signature: not stored yet.
	if b, err := n.store.OwnBallot(first.JobID); err == nil {
		t.Fatalf("the first job's ballot was stored before the second job was judged: %+v", b)
	}
	close(signer.release)
	for _, id := range []common.Hash{first.JobID, second.JobID} {
		if c, err := n.WaitFinal(ctx, id); err != nil || c.Status != consensus.StatusVerified {
			t.Fatalf("job %s: %+v %v", id.Hex(), c, err)
		}
	}
}

// countingPolicy votes true on every claim and counts the jobs it judges.
type countingPolicy struct {
	mu     sync.Mutex
	judged map[common.Hash]int
}

func (p *countingPolicy) Ballots(_ context.Context, j *Judgement) [][]claims.Verdict {
	p.mu.Lock()
	p.judged[j.Job.JobID]++
	p.mu.Unlock()
	v := make([]claims.Verdict, len(j.Mine))
	for i := range v {
		v[i] = claims.True
	}
	return [][]claims.Verdict{v}
}

func (p *countingPolicy) count(id common.Hash) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.judged[id]
}

// TestResumedJobNotJudgedAgain: a node that voted on a job, stopped while
// the job was still pending (its other validator never came) and started
// again, takes the job up without judging it again: its stored ballot is
// the one it stands by. Nor does the job's first announcement, replayed
// by a peer after the restart (when the node's memory of announcements
// is empty), make it judge, or sign, again: a second ballot signed in a
// batch would have its leaf in the proofs of the batch's other ballots,
// and from that leaf anyone could rebuild it, signed.
func TestResumedJobNotJudgedAgain(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	absent, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	g := &consensus.Genesis{NetworkID: 9, Validators: []consensus.Validator{
		{Name: "here", Address: crypto.PubkeyToAddress(key.PublicKey), Stake: 1},
		{Name: "absent", Address: crypto.PubkeyToAddress(absent.PublicKey), Stake: 1},
	}}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stored := make(chan common.Hash, 16) // own ballots stored (TraceBallotStored)
	start := func(p *countingPolicy) *Node {
		t.Helper()
		n, err := New(Options{Key: key, Genesis: g, Verifier: claims.Arithmetic{}, Ballots: p, Deadline: time.Minute,
			DataDir: dir, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			Trace: func(e TraceEvent) {
				if e.Step == TraceBallotStored {
					select {
					case stored <- e.Job:
					default:
					}
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return n
	}
	first := &countingPolicy{judged: map[common.Hash]int{}}
	n := start(first)
	job, err := n.Submit(ctx, api.VerifyRequest{Output: "2 + 2 = 4."})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-stored:
		if id != job.JobID {
			t.Fatalf("ballot stored for %s, want %s", id.Hex(), job.JobID.Hex())
		}
	case <-ctx.Done():
		t.Fatalf("no own ballot stored: %v", ctx.Err())
	}
	if first.count(job.JobID) != 1 {
		t.Fatalf("judged %d times before the restart, want 1", first.count(job.JobID))
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}

	again := &countingPolicy{judged: map[common.Hash]int{}}
	n = start(again)
	defer n.Stop()
	// The resumed job's answer is sent by a tracked task; Stop waits for
	// those, so after it the judging, had there been one, is counted.
	j, err := n.store.Job(job.JobID)
	if err != nil || j.Status.Final() {
		t.Fatalf("job after the restart: %+v %v, want it pending", j, err)
	}
	// The announcement as first published (resend 0), replayed by a peer.
	verdict, x := n.val.validateJob(ctx, peer.ID("a peer"), j.Message)
	if verdict != p2p.Accept {
		t.Fatalf("replayed announcement after a restart: %v, want it accepted (the node's memory of announcements is empty)", verdict)
	}
	n.val.onJob(x)
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if c := again.count(job.JobID); c != 0 {
		t.Fatalf("the resumed and replayed job was judged %d times after the restart, want 0", c)
	}
}
