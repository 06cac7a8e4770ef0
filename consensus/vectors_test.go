package consensus

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/verity-network/verity/claims"
	"github.com/verity-network/verity/sigs"
)

var update = flag.Bool("update", false, "rewrite testdata/certs and the fuzz seed corpora")

const certsDir = "../testdata/certs"

// vectorNetworkID is the network id of the test vectors.
const vectorNetworkID = 31337

var vectorValidators = []struct {
	name  string
	stake uint64
}{{"alice", 10}, {"bob", 20}, {"carol", 30}, {"dave", 40}}

// vectorCase is one entry of testdata/certs/invalid/cases.json.
type vectorCase struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Certificate string `json:"certificate"`      // relative to testdata/certs
	Output      string `json:"output,omitempty"` // relative to testdata/certs; empty: no output check
	Sentinel    string `json:"sentinel"`         // name of the consensus Err* value
	Error       string `json:"error"`            // exact message of VerifyCertificate (or ParseCertificate)
	// Stage is "parse" for a file that ParseCertificate must refuse;
	// empty for one that parses and VerifyCertificate refuses.
	Stage string `json:"stage,omitempty"`
}

// sentinels names the errors a vector may expect.
var sentinels = map[string]error{
	"ErrWrongNetwork": ErrWrongNetwork, "ErrUnknownValidator": ErrUnknownValidator, "ErrNotAssigned": ErrNotAssigned,
	"ErrBallotShape": ErrBallotShape, "ErrBadSignature": ErrBadSignature, "ErrDuplicateValidator": ErrDuplicateValidator,
	"ErrUnsortedBallots": ErrUnsortedBallots, "ErrGenesisMismatch": ErrGenesisMismatch, "ErrJobID": ErrJobID,
	"ErrClaimHash": ErrClaimHash, "ErrClaimIndex": ErrClaimIndex, "ErrClaimsRoot": ErrClaimsRoot,
	"ErrOutputHash": ErrOutputHash, "ErrNoQuorum": ErrNoQuorum, "ErrVerdictMismatch": ErrVerdictMismatch,
	"ErrStakeMismatch": ErrStakeMismatch, "ErrStatusMismatch": ErrStatusMismatch,
	"ErrCertificateShape": ErrCertificateShape, "ErrUnsupportedVersion": ErrUnsupportedVersion,
	"ErrBelowFloor": ErrBelowFloor, "ErrNotFinal": ErrNotFinal,
}

// vectorSet is the validator set of the vectors: validator i has key
// keccak256("verity test key i").
func vectorSet(tb testing.TB) (*Genesis, map[common.Address]*sigs.KeySigner) {
	tb.Helper()
	policy := DefaultPolicy()
	g := &Genesis{NetworkID: vectorNetworkID, Policy: &policy}
	signers := map[common.Address]*sigs.KeySigner{}
	for i, v := range vectorValidators {
		s := sigs.NewKeySigner(testKey(i))
		signers[s.Address()] = s
		g.Validators = append(g.Validators, Validator{Name: v.name, Address: s.Address(), Stake: v.stake})
	}
	return g, signers
}

// vectorGateway is the gateway of the vectors' jobs: carol.
func vectorGateway(set *ValidatorSet) common.Address {
	for _, v := range set.Validators() {
		if v.Name == "carol" {
			return v.Address
		}
	}
	panic("no carol in the vector set")
}

// vectorCert tallies ballots of the named validators with their verdicts
// per claim over the sentences of output.
func vectorCert(tb testing.TB, set *ValidatorSet, signers map[common.Address]*sigs.KeySigner, sentences []string,
	q Quorum, replication uint32, votes map[string][]claims.Verdict, batched bool) *Certificate {
	tb.Helper()
	output := strings.Join(sentences, " ") + "\n"
	cs := claims.FromTexts(sentences)
	p := JobParams{
		NetworkID: set.NetworkID(), OutputHash: claims.OutputHash([]byte(output)), ClaimsRoot: claims.RootOf(cs),
		ClaimCount: uint32(len(cs)), Quorum: q, Replication: replication, Gateway: vectorGateway(set),
		Deadline: uint64(testDeadline.UnixMilli()), Nonce: claims.HashText("verity test vector nonce"),
	}
	tl, err := NewTally(set, p)
	if err != nil {
		tb.Fatal(err)
	}
	for pos := range set.Len() {
		v := set.At(pos)
		vs, ok := votes[v.Name]
		if !ok {
			continue
		}
		idx := tl.Assignment().ByValidator[pos]
		mine := make([]claims.Verdict, len(idx))
		for i, c := range idx {
			mine[i] = vs[c]
		}
		b, err := SignBallot(signers[v.Address], p.NetworkID, tl.JobID(), p.OutputHash, p.ClaimsRoot, idx, mine)
		if err != nil {
			tb.Fatal(err)
		}
		if batched {
			batchBallot(tb, signers[v.Address], b, pos)
		}
		mustAdd(tb, tl, b)
	}
	return mustCert(tb, tl, cs)
}

// batchBallot re-signs b in a batch of five of its validator's ballots, the
// other four for other jobs, with b at leaf pos%5: a certificate's ballots
// then sit at different places of their batches.
func batchBallot(tb testing.TB, s *sigs.KeySigner, b *Ballot, pos int) {
	tb.Helper()
	batch := make([]*Ballot, 5)
	for i := range batch {
		other := *b
		other.JobID = claims.HashText(fmt.Sprintf("another job in %s's batch, %d", s.Address().Hex(), i))
		batch[i] = &other
	}
	batch[pos%5] = b
	if err := SignBallotBatch(s, batch); err != nil {
		tb.Fatal(err)
	}
}

var (
	liarSentences     = []string{"2 + 2 = 5."}
	rejectedSentences = []string{
		"Paris is the capital of France.",
		"The Seine flows through Paris.",
		"The Eiffel Tower was completed in 1899.",
		"Water boils at 100 degrees Celsius at sea level.",
		"The Moon is made of cheese.",
	}
	verifiedSentences = []string{
		"Mount Everest is the highest mountain above sea level.",
		"The Pacific is the largest ocean on Earth.",
		"Light travels faster than sound.",
	}
)

// vectorFile is a file of testdata/certs with its content.
type vectorFile struct {
	path string
	data []byte
}

// generateVectors builds every file of testdata/certs.
func generateVectors(tb testing.TB) []vectorFile {
	tb.Helper()
	g, signers := vectorSet(tb)
	set, err := g.ValidatorSet()
	if err != nil {
		tb.Fatal(err)
	}
	T, F, A := claims.True, claims.False, claims.Abstain
	valid := vectorCert(tb, set, signers, rejectedSentences, DefaultQuorum, 0, map[string][]claims.Verdict{
		"alice": {T, T, F, T, T},
		"bob":   {T, T, F, A, F},
		"carol": {T, T, F, T, F},
		"dave":  {T, T, F, T, F},
	}, false)
	verified := vectorCert(tb, set, signers, verifiedSentences, CountQuorum(4, 4), 0, map[string][]claims.Verdict{
		"alice": {T, T, T}, "bob": {T, T, T}, "carol": {T, T, T}, "dave": {T, T, T},
	}, false)
	// batched: the rejected job again, each ballot signed in a batch of five.
	batched := vectorCert(tb, set, signers, rejectedSentences, DefaultQuorum, 0, map[string][]claims.Verdict{
		"alice": {T, T, F, T, T},
		"bob":   {T, T, F, A, F},
		"carol": {T, T, F, T, F},
		"dave":  {T, T, F, T, F},
	}, true)
	batchGateway(tb, signers, batched)

	var files []vectorFile
	addJSON := func(path string, v any) {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, vectorFile{path, append(data, '\n')})
	}
	addJSON("genesis.json", g)
	files = append(files,
		vectorFile{"output.txt", []byte(strings.Join(rejectedSentences, " ") + "\n")},
		vectorFile{"verified-output.txt", []byte(strings.Join(verifiedSentences, " ") + "\n")},
		vectorFile{"wrong-output.txt", []byte(strings.Join(rejectedSentences, " ") + "\n\n")},
		vectorFile{"liar-output.txt", []byte(strings.Join(liarSentences, " ") + "\n")},
	)
	addJSON("valid.json", valid)
	addJSON("verified.json", verified)
	addJSON("batched.json", batched)

	pos := func(c *Certificate, name string) int {
		for _, v := range g.Validators {
			if v.Name == name {
				return slices.IndexFunc(c.Ballots, func(b Vote) bool { return b.Validator == v.Address })
			}
		}
		tb.Fatalf("no validator %s", name)
		return -1
	}
	stranger := sigs.NewKeySigner(testKey(9))
	var cases []vectorCase
	add := func(name, description, output string, c *Certificate) {
		addJSON("invalid/"+name+".json", c)
		err := VerifyCertificate(c, set, readOutput(tb, files, output))
		if err == nil {
			tb.Fatalf("variant %s verifies", name)
		}
		cases = append(cases, vectorCase{Name: name, Description: description, Certificate: "invalid/" + name + ".json",
			Output: output, Sentinel: sentinelName(tb, err), Error: err.Error()})
	}
	variant := func(name, description, output string, mutate func(c *Certificate)) {
		c := cloneCert(tb, valid)
		mutate(c)
		add(name, description, output, c)
	}
	resign := func(c *Certificate) {
		if err := c.Sign(signers[c.Gateway]); err != nil {
			tb.Fatal(err)
		}
	}
	// raw is a variant that must fail to parse: the same bytes read
	// differently by a lenient decoder.
	raw := func(name, description string, mutate func(data []byte) []byte) {
		data, err := json.MarshalIndent(valid, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		data = append(mutate(data), '\n')
		files = append(files, vectorFile{"invalid/" + name + ".json", data})
		_, err = ParseCertificate(data)
		if err == nil {
			tb.Fatalf("variant %s parses", name)
		}
		cases = append(cases, vectorCase{Name: name, Description: description, Certificate: "invalid/" + name + ".json",
			Output: "output.txt", Sentinel: sentinelName(tb, err), Error: err.Error(), Stage: "parse"})
	}
	variant("flipped-verdict", "claim 2 decided false is stated true, and the gateway signs it", "output.txt", func(c *Certificate) {
		c.Claims[2].Verdict = OutcomeTrue
		resign(c)
	})
	variant("forged-signature", "bob's ballot carries a signature of the same digest by another key", "output.txt", func(c *Certificate) {
		k := pos(c, "bob")
		b := Ballot{NetworkID: c.NetworkID, JobID: c.JobID, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot, Vote: c.Ballots[k]}
		sig, err := stranger.SignDigest(b.Digest())
		if err != nil {
			tb.Fatal(err)
		}
		c.Ballots[k].Signature = sig
	})
	variant("unknown-key", "alice's ballot is replaced by a correctly signed ballot from a key outside the validator set", "output.txt", func(c *Certificate) {
		b, err := SignBallot(stranger, c.NetworkID, c.JobID, c.OutputHash, c.ClaimsRoot, []uint32{0, 1, 2, 3, 4}, []claims.Verdict{T, T, F, T, F})
		if err != nil {
			tb.Fatal(err)
		}
		c.Ballots[pos(c, "alice")] = b.Vote
		slices.SortFunc(c.Ballots, func(a, b Vote) int { return bytes.Compare(a.Validator[:], b.Validator[:]) })
	})
	variant("duplicated-validator", "carol's ballot appears twice, in place of alice's", "output.txt", func(c *Certificate) {
		c.Ballots = slices.Delete(c.Ballots, pos(c, "alice"), pos(c, "alice")+1)
		k := pos(c, "carol")
		c.Ballots = slices.Insert(c.Ballots, k, c.Ballots[k])
	})
	variant("unsorted-ballots", "the first two ballots are swapped", "output.txt", func(c *Certificate) {
		c.Ballots[0], c.Ballots[1] = c.Ballots[1], c.Ballots[0]
	})
	variant("wrong-network", "the certificate states another network id", "output.txt", func(c *Certificate) {
		c.NetworkID++
	})
	variant("below-quorum", "carol's and dave's ballots are dropped, and the gateway signs it: 30 of 100 stake cannot decide", "output.txt", func(c *Certificate) {
		c.Ballots = slices.DeleteFunc(c.Ballots, func(b Vote) bool {
			return b.Validator == c.Ballots[pos(c, "carol")].Validator || b.Validator == c.Ballots[pos(c, "dave")].Validator
		})
		resign(c)
	})
	variant("tampered-claim", "claim 4's text is changed", "output.txt", func(c *Certificate) {
		c.Claims[4].Text = "The Moon is not made of cheese."
	})
	variant("tampered-claim-rehashed", "claim 4's text is changed and rehashed", "output.txt", func(c *Certificate) {
		c.Claims[4].Text = "The Moon is not made of cheese."
		c.Claims[4].Hash = claims.HashText(c.Claims[4].Text)
	})
	variant("weakened-quorum", "the quorum is stated as 1/2 instead of the signed 2/3", "output.txt", func(c *Certificate) {
		c.Quorum = StakeQuorum(1, 2)
	})
	variant("tampered-stake", "claim 0 states more stake than its ballots give", "output.txt", func(c *Certificate) {
		c.Claims[0].StakeFor = 99
	})
	variant("wrong-status", "a rejected job is stated verified, and the gateway signs it", "output.txt", func(c *Certificate) {
		c.Status = StatusVerified
		resign(c)
	})
	variant("forged-gateway-signature", "the gateway signature is made by a key that is not the gateway's", "output.txt", func(c *Certificate) {
		sig, err := stranger.SignDigest(c.GatewayDigest())
		if err != nil {
			tb.Fatal(err)
		}
		c.GatewaySignature = sig
	})
	variant("restated-issued-at", "issued_at is moved a day later without the gateway signing it", "output.txt", func(c *Certificate) {
		c.IssuedAt = c.IssuedAt.AddDate(0, 0, 1)
	})
	variant("not-final-unsigned", "the certificate carries no gateway signature", "output.txt", func(c *Certificate) {
		c.GatewaySignature = nil
	})
	variant("not-final-zero-ballots", "a peer without a key publishes a certificate with no ballots (every claim undecided) before the deadline", "output.txt", func(c *Certificate) {
		c.Ballots = []Vote{}
		c.IssuedAt = c.IssuedAt.Add(-time.Second)
		c.GatewaySignature = nil
		for i := range c.Claims {
			c.Claims[i].Verdict, c.Claims[i].StakeFor = OutcomeUndecided, 0
		}
		c.Status = StatusUnresolved
	})
	variant("not-final-early-subset", "the gateway signs a certificate from alice's and bob's ballots only, a second before the deadline", "output.txt", func(c *Certificate) {
		keep := map[common.Address]bool{c.Ballots[pos(c, "alice")].Validator: true, c.Ballots[pos(c, "bob")].Validator: true}
		c.Ballots = slices.DeleteFunc(c.Ballots, func(b Vote) bool { return !keep[b.Validator] })
		c.IssuedAt = c.IssuedAt.Add(-time.Second)
		retally(tb, set, c)
		resign(c)
	})
	batchVariant := func(name, description string, mutate func(c *Certificate)) {
		c := cloneCert(tb, batched)
		mutate(c)
		add(name, description, "output.txt", c)
	}
	batchVariant("batch-wrong-proof", "bob's batch proof has one sibling hash changed", func(c *Certificate) {
		c.Ballots[pos(c, "bob")].Batch.Siblings[0][0] ^= 1
	})
	batchVariant("batch-proof-of-another-job", "bob's ballot carries the proof of another leaf of his batch (a ballot for another job)", func(c *Certificate) {
		p := c.Ballots[pos(c, "bob")].Batch
		other, err := claims.Prove(batchLeaves(tb, c, signers, pos(c, "bob")), int(p.Index+1)%int(p.Count))
		if err != nil {
			tb.Fatal(err)
		}
		c.Ballots[pos(c, "bob")].Batch = &other
	})
	batchVariant("batch-reordered-leaves", "bob's ballot claims another position in his batch with its own siblings (the leaves reordered)", func(c *Certificate) {
		p := c.Ballots[pos(c, "bob")].Batch
		p.Index ^= 1
	})
	batchVariant("batch-wrong-count", "bob's batch proof states one more leaf than he signed", func(c *Certificate) {
		c.Ballots[pos(c, "bob")].Batch.Count++
	})
	batchVariant("gateway-batch-wrong-proof", "the gateway's batch proof has one sibling hash changed", func(c *Certificate) {
		c.GatewayBatch.Siblings[0][0] ^= 1
	})
	batchVariant("gateway-batch-restated-status", "the status is restated verified under the gateway's batch signature", func(c *Certificate) {
		c.Status = StatusVerified
	})
	add("below-floor-replication-1", "one validator's ballot decides a false claim true: a job with replication 1, which the policy's fault assumption (byzantine stake below 1/3) does not allow", "liar-output.txt",
		liarCert(tb, g, signers))
	raw("duplicate-key", "a second \"status\" key says verified, which a decoder that keeps the first key would read", func(data []byte) []byte {
		return bytes.Replace(data, []byte("{\n"), []byte("{\n  \"status\": \"verified\",\n"), 1)
	})
	raw("case-variant-key", "\"Status\" beside \"status\", which a case-insensitive decoder would read", func(data []byte) []byte {
		return bytes.Replace(data, []byte("\n  \"status\": \"rejected\","), []byte("\n  \"Status\": \"verified\",\n  \"status\": \"rejected\","), 1)
	})
	// wrong output: the valid certificate against another output
	err = VerifyCertificate(valid, set, readOutput(tb, files, "wrong-output.txt"))
	if err == nil {
		tb.Fatal("valid certificate verifies against the wrong output")
	}
	cases = append(cases, vectorCase{Name: "wrong-output", Description: "the valid certificate checked against another output",
		Certificate: "valid.json", Output: "wrong-output.txt", Sentinel: sentinelName(tb, err), Error: err.Error()})
	addJSON("invalid/cases.json", cases)
	return files
}

// batchGateway re-signs c's outcome in a batch of three certificates of its
// gateway, c in the middle.
func batchGateway(tb testing.TB, signers map[common.Address]*sigs.KeySigner, c *Certificate) {
	tb.Helper()
	batch := []*Certificate{cloneCert(tb, c), c, cloneCert(tb, c)}
	batch[0].JobID = claims.HashText("another certificate in the gateway's batch, 0")
	batch[2].JobID = claims.HashText("another certificate in the gateway's batch, 2")
	if err := SignCertificateBatch(signers[c.Gateway], batch); err != nil {
		tb.Fatal(err)
	}
}

// batchLeaves rebuilds the struct hashes of the batch that holds ballot k
// of c, as batchBallot made it.
func batchLeaves(tb testing.TB, c *Certificate, signers map[common.Address]*sigs.KeySigner, k int) []common.Hash {
	tb.Helper()
	v := c.Ballots[k]
	b := &Ballot{NetworkID: c.NetworkID, JobID: c.JobID, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot, Vote: v}
	leaves := make([]common.Hash, v.Batch.Count)
	for i := range leaves {
		other := *b
		other.JobID = claims.HashText(fmt.Sprintf("another job in %s's batch, %d", signers[v.Validator].Address().Hex(), i))
		leaves[i] = sigs.BallotStructHash(other.Data())
	}
	leaves[v.Batch.Index] = sigs.BallotStructHash(b.Data())
	return leaves
}

// retally recomputes c's verdicts, stakes and status from its ballots.
func retally(tb testing.TB, set *ValidatorSet, c *Certificate) {
	tb.Helper()
	tl, err := NewTally(set, c.Params())
	if err != nil {
		tb.Fatal(err)
	}
	for i := range c.Ballots {
		b := &Ballot{NetworkID: c.NetworkID, JobID: c.JobID, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot, Vote: c.Ballots[i]}
		if _, err := tl.AddVerifiedBallot(b); err != nil {
			tb.Fatal(err)
		}
	}
	cs := make([]claims.Claim, len(c.Claims))
	for i, cl := range c.Claims {
		cs[i] = claims.Claim{Index: cl.Index, Text: cl.Text, Hash: cl.Hash}
	}
	re, err := tl.Certificate(cs, c.IssuedAt)
	if err != nil {
		tb.Fatal(err)
	}
	c.Claims, c.Status = re.Claims, re.Status
}

// liarCert is the certificate a single validator can mint when a job may
// ask for replication 1: its own ballot alone decides "2 + 2 = 5." true.
// It is built under a policy that allows it, then stated for the vectors'
// genesis (whose default policy does not).
func liarCert(tb testing.TB, g *Genesis, signers map[common.Address]*sigs.KeySigner) *Certificate {
	tb.Helper()
	lax := *g
	lax.Policy = &Policy{ByzantineBelow: Fraction{1, 1000}, QuorumKinds: []string{QuorumStake}, MinStakeQuorum: Fraction{2, 3}}
	set, err := lax.ValidatorSet()
	if err != nil {
		tb.Fatal(err)
	}
	output := strings.Join(liarSentences, " ") + "\n"
	cs := claims.FromTexts(liarSentences)
	p := JobParams{
		NetworkID: set.NetworkID(), OutputHash: claims.OutputHash([]byte(output)), ClaimsRoot: claims.RootOf(cs),
		ClaimCount: uint32(len(cs)), Quorum: DefaultQuorum, Replication: 1, Gateway: vectorGateway(set),
		Deadline: uint64(testDeadline.UnixMilli()), Nonce: claims.HashText("verity test vector nonce"),
	}
	tl, err := NewTally(set, p)
	if err != nil {
		tb.Fatal(err)
	}
	liar := set.At(tl.Assignment().ByClaim[0][0])
	b, err := SignBallot(signers[liar.Address], p.NetworkID, tl.JobID(), p.OutputHash, p.ClaimsRoot, []uint32{0}, []claims.Verdict{claims.True})
	if err != nil {
		tb.Fatal(err)
	}
	mustAdd(tb, tl, b)
	c := mustCert(tb, tl, cs)
	c.GenesisHash = g.Hash()
	if err := c.Sign(signers[c.Gateway]); err != nil {
		tb.Fatal(err)
	}
	return c
}

func readOutput(tb testing.TB, files []vectorFile, name string) []byte {
	tb.Helper()
	if name == "" {
		return nil
	}
	for _, f := range files {
		if f.path == name {
			return f.data
		}
	}
	tb.Fatalf("no output %s", name)
	return nil
}

// sentinelName is the name of the most specific sentinel err wraps.
func sentinelName(tb testing.TB, err error) string {
	tb.Helper()
	var names []string
	for name, s := range sentinels {
		if errors.Is(err, s) {
			names = append(names, name)
		}
	}
	if len(names) != 1 {
		tb.Fatalf("%v matches sentinels %v, want exactly one", err, names)
	}
	return names[0]
}

// TestCertVectors checks the committed files of testdata/certs: the valid
// certificates verify, every invalid one fails with its sentinel and exact
// message, and the files are what the generator writes (run with -update to
// rewrite them).
func TestCertVectors(t *testing.T) {
	generated := generateVectors(t)
	if *update {
		for _, f := range generated {
			p := filepath.Join(certsDir, f.path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		writeFuzzSeeds(t)
	}
	for _, f := range generated {
		got, err := os.ReadFile(filepath.Join(certsDir, f.path))
		if err != nil {
			t.Fatalf("%v (run go test ./consensus -run TestCertVectors -update)", err)
		}
		if !bytes.Equal(got, f.data) {
			t.Errorf("%s differs from what the generator writes (run go test ./consensus -run TestCertVectors -update)", f.path)
		}
	}

	set := loadVectorSet(t)
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(certsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	for _, v := range []struct{ cert, output string }{
		{"valid.json", "output.txt"}, {"verified.json", "verified-output.txt"}, {"batched.json", "output.txt"},
	} {
		c, err := ParseCertificate(read(v.cert))
		if err != nil {
			t.Fatalf("%s: %v", v.cert, err)
		}
		if err := VerifyCertificate(c, set, read(v.output)); err != nil {
			t.Fatalf("%s: %v", v.cert, err)
		}
	}

	// A node verifies with a cache warmed by the honest certificates
	// first: their signatures recovered and their batch proofs' inner
	// nodes remembered. A peer with no key replays them tampered; the
	// warm cache must not let one through.
	warm := NewSignatureCache(1 << 10)
	for _, v := range []struct{ cert, output string }{{"valid.json", "output.txt"}, {"batched.json", "output.txt"}} {
		c, err := ParseCertificate(read(v.cert))
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyCertificate(c, set, read(v.output), WithSignatureCache(warm)); err != nil {
			t.Fatalf("%s with a cache: %v", v.cert, err)
		}
	}

	var cases []vectorCase
	if err := json.Unmarshal(read("invalid/cases.json"), &cases); err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			covered[tc.Certificate] = true
			sentinel, ok := sentinels[tc.Sentinel]
			if !ok {
				t.Fatalf("unknown sentinel %q", tc.Sentinel)
			}
			c, err := ParseCertificate(read(tc.Certificate))
			if tc.Stage == "parse" {
				if !errors.Is(err, sentinel) || err.Error() != tc.Error {
					t.Fatalf("parse: got %v, want %s: %q", err, tc.Sentinel, tc.Error)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var output []byte
			if tc.Output != "" {
				output = read(tc.Output)
			}
			err = VerifyCertificate(c, set, output)
			if !errors.Is(err, sentinel) {
				t.Fatalf("got %v, want %s", err, tc.Sentinel)
			}
			if err.Error() != tc.Error {
				t.Fatalf("message\n got %q\nwant %q", err, tc.Error)
			}
			if err := VerifyCertificate(c, set, output, WithSignatureCache(warm)); !errors.Is(err, sentinel) {
				t.Fatalf("with a warm cache: got %v, want %s", err, tc.Sentinel)
			}
		})
	}
	invalid, err := filepath.Glob(filepath.Join(certsDir, "invalid", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range invalid {
		if name := "invalid/" + filepath.Base(p); name != "invalid/cases.json" && !covered[name] {
			t.Errorf("%s has no case in cases.json", name)
		}
	}
	if len(cases) < 10 {
		t.Fatalf("only %d invalid cases", len(cases))
	}
}

func loadVectorSet(tb testing.TB) *ValidatorSet {
	tb.Helper()
	g, err := LoadGenesis(filepath.Join(certsDir, "genesis.json"))
	if err != nil {
		tb.Fatal(err)
	}
	set, err := g.ValidatorSet()
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// writeFuzzSeeds writes the seed corpora of the fuzz targets from the vectors.
func writeFuzzSeeds(t *testing.T) {
	t.Helper()
	write := func(target, name string, data []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	certs, err := filepath.Glob(filepath.Join(certsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(certsDir, "invalid", "*.json"))
	for _, p := range append(certs, more...) {
		base := strings.TrimSuffix(filepath.Base(p), ".json")
		if base == "genesis" || base == "cases" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		write("FuzzParseCertificate", base, data)
		write("FuzzVerifyCertificate", base, data)
	}
	for name, data := range map[string]string{"empty": "", "null": "null", "trailing": `{"version":1} x`, "array": "[]"} {
		write("FuzzParseCertificate", name, []byte(data))
	}
	g, err := os.ReadFile(filepath.Join(certsDir, "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	write("FuzzParseGenesis", "genesis", g)
	for name, data := range map[string]string{
		"empty-set":  `{"network_id":1,"validators":[]}`,
		"overflow":   `{"network_id":1,"validators":[{"name":"a","address":"0x0000000000000000000000000000000000000001","stake":18446744073709551615},{"name":"b","address":"0x0000000000000000000000000000000000000002","stake":1}]}`,
		"duplicate":  `{"network_id":1,"validators":[{"name":"a","address":"0x0000000000000000000000000000000000000001","stake":1},{"name":"b","address":"0x0000000000000000000000000000000000000001","stake":1}]}`,
		"unknown":    `{"network_id":1,"validators":[],"x":1}`,
		"not-json":   `network_id = 1`,
		"zero-stake": `{"network_id":1,"validators":[{"name":"a","address":"0x0000000000000000000000000000000000000001","stake":0}]}`,
	} {
		write("FuzzParseGenesis", name, []byte(data))
	}
}

// TestCertificateDocInStep checks that docs/certificate.md shows the digest
// values of the first ballot of valid.json and of batched.json and names
// every error sentinel.
func TestCertificateDocInStep(t *testing.T) {
	doc, err := os.ReadFile("../docs/certificate.md")
	if err != nil {
		t.Fatal(err)
	}
	firstBallot := func(name string) (*Certificate, *Ballot) {
		data, err := os.ReadFile(filepath.Join(certsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCertificate(data)
		if err != nil {
			t.Fatal(err)
		}
		return c, &Ballot{NetworkID: c.NetworkID, JobID: c.JobID, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot, Vote: c.Ballots[0]}
	}
	c, b := firstBallot("valid.json")
	// The batch values: the first ballot of batched.json.
	bc, bb := firstBallot("batched.json")
	root, ok := claims.ProofRoot(sigs.BallotStructHash(bb.Data()), *bb.Batch)
	if !ok {
		t.Fatal("batched.json: the first proof does not fold")
	}
	for name, h := range map[string]common.Hash{
		"domain separator":    sigs.DomainSeparator(c.NetworkID),
		"struct hash":         sigs.BallotStructHash(b.Data()),
		"digest":              b.Digest(),
		"job id":              c.JobID,
		"genesis hash":        c.GenesisHash,
		"gateway struct hash": sigs.CertificateStructHash(c.GatewayData()),
		"gateway digest":      c.GatewayDigest(),
		"batch type hash":     crypto.Keccak256Hash([]byte(sigs.BatchType)),
		"batch root":          root,
		"batch struct hash":   sigs.BatchStructHash(root, bb.Batch.Count),
		"batch digest":        sigs.BatchDigest(bc.NetworkID, root, bb.Batch.Count),
	} {
		if !bytes.Contains(doc, []byte(h.Hex())) {
			t.Errorf("docs/certificate.md lacks the %s %s", name, h.Hex())
		}
	}
	for name := range sentinels {
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("docs/certificate.md does not list %s", name)
		}
	}
	if !bytes.Contains(doc, []byte("`ErrCertificateTooLarge`")) {
		t.Error("docs/certificate.md does not list ErrCertificateTooLarge")
	}
}
